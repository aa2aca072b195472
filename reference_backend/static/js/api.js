// The JSON API seen from the browser: same origin, the HttpOnly session cookie does the auth.

export class ApiError extends Error {
  // A response that was not 2xx; `message` is the server's own wording (docs/contract.md "Errors").
  constructor(status, code, message, details = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class NetworkError extends Error {
  // The request never got an answer: offline, refused, aborted by a timeout.
  constructor(message, { timedOut = false } = {}) {
    super(message);
    this.name = "NetworkError";
    this.timedOut = timedOut;
  }
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's HTML page, say): fall through to a message built from the status.
  }
  const error = body && typeof body === "object" ? body.error : null;
  if (error && typeof error.message === "string") {
    return new ApiError(response.status, error.code || "error", error.message, error.details || {});
  }
  const reason = response.statusText ? ` ${response.statusText}` : "";
  return new ApiError(response.status, "http_error", `The server answered ${response.status}${reason}.`);
}

export function loginUrl() {
  const next = location.pathname + location.search;
  return `/login?next=${encodeURIComponent(next)}`;
}

// fetch() with the contract's error body turned into ApiError and transport failures into NetworkError.
// A 401 sends the user to the login page unless `allowAnonymous` is set.
export async function request(path, { method = "GET", json, body, timeoutMs = 30000, allowAnonymous = false } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const headers = { Accept: "application/json" };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, body, headers, credentials: "same-origin", signal: controller.signal });
  } catch (err) {
    if (controller.signal.aborted) {
      throw new NetworkError(`The server did not answer within ${Math.round(timeoutMs / 1000)} s.`, { timedOut: true });
    }
    throw new NetworkError("The network connection failed.");
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 401 && !allowAnonymous) {
    location.assign(loginUrl());
    throw await errorFrom(response);
  }
  if (!response.ok) {
    throw await errorFrom(response);
  }
  if (response.status === 204) {
    return null;
  }
  return response.json();
}

export const TERMINAL = new Set(["completed", "completed_with_errors", "failed", "cancelled"]);
