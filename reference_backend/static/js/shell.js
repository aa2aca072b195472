// What every signed-in page shares: the user check, the header (with the bell), small formatters, the alert area.

import { request } from "./api.js";
import { startBell } from "./bell.js";

export async function requireUser() {
  const user = await request("/api/v1/auth/me");
  const who = document.getElementById("who");
  if (who) {
    who.textContent = user.email;
  }
  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      try {
        await request("/api/v1/auth/logout", { method: "POST", allowAnonymous: true });
      } finally {
        location.assign("/login");
      }
    });
  }
  startBell();
  return user;
}

// One role=alert element per page; each source (upload, connection, action...) owns one line of it,
// so clearing the connection problem does not wipe an action's error.
export class Alerts {
  constructor(element) {
    this.element = element;
    this.messages = new Map();
  }

  set(source, message) {
    if (message) {
      this.messages.set(source, message);
    } else {
      this.messages.delete(source);
    }
    this.render();
  }

  clear(source) {
    this.set(source, null);
  }

  render() {
    this.element.replaceChildren(
      ...[...this.messages.values()].map((text) => {
        const line = document.createElement("p");
        line.textContent = text;
        return line;
      }),
    );
    this.element.hidden = this.messages.size === 0;
  }
}

const NUMBER = new Intl.NumberFormat("en-US");

export function formatCount(n) {
  return NUMBER.format(n ?? 0);
}

export function formatBytes(bytes) {
  if (bytes < 1024) {
    return `${bytes} bytes`;
  }
  if (bytes < 1024 * 1024) {
    return `${(bytes / 1024).toFixed(1)} KB`;
  }
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  const minutes = Math.floor(s / 60);
  const rest = s % 60;
  return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
}

export function formatClock(date) {
  return date.toLocaleTimeString("en-GB", { hour12: false });
}

export function statusLabel(status) {
  return (status || "unknown").replaceAll("_", " ");
}

export function batchName(batch) {
  return batch.filename || "Pasted prompts";
}
