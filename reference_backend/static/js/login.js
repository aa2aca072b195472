// Log in (or create an account, then log in); the server sets the HttpOnly session cookie.

import { ApiError, request } from "./api.js";
import { Alerts } from "./shell.js";

const form = document.getElementById("login-form");
const alerts = new Alerts(document.getElementById("error"));

function nextPage() {
  const next = new URLSearchParams(location.search).get("next");
  // Only same-site paths: "//host" or "https://..." would make this an open redirect.
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/batches/new";
}

function credentials() {
  return { email: form.email.value.trim(), password: form.password.value };
}

async function logIn() {
  await request("/api/v1/auth/login", { method: "POST", json: credentials(), allowAnonymous: true });
  location.assign(nextPage());
}

async function run(action) {
  alerts.clear("login");
  const { email, password } = credentials();
  if (!email || !password) {
    alerts.set("login", "Enter your email and your password.");
    return;
  }
  for (const button of form.querySelectorAll("button")) {
    button.disabled = true;
  }
  try {
    await action();
  } catch (err) {
    alerts.set("login", err instanceof ApiError || err.name === "NetworkError" ? err.message : String(err));
  } finally {
    for (const button of form.querySelectorAll("button")) {
      button.disabled = false;
    }
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  run(logIn);
});

document.getElementById("register").addEventListener("click", () =>
  run(async () => {
    await request("/api/v1/auth/register", { method: "POST", json: credentials(), allowAnonymous: true });
    await logIn();
  }),
);
