// Notification settings: which batch events reach the user on which channel, and the webhook.

import { request } from "./api.js";
import { Alerts, formatClock, requireUser } from "./shell.js";

const PREFERENCES = "/api/v1/notifications/preferences";
// Column titles, and the short names that label each checkbox ("email: completed").
const CHANNEL_TITLES = { in_app: "In-app (bell)", email: "Email", push: "Browser push", webhook: "Webhook" };
const CHANNEL_NAMES = { in_app: "in-app", email: "email", push: "push", webhook: "webhook" };
const EVENT_NAMES = {
  started: "started",
  progress_25: "25% done",
  progress_50: "50% done",
  progress_75: "75% done",
  completed: "completed",
  completed_with_errors: "completed with errors",
  failed: "failed",
  cancelled: "cancelled",
};

const $ = (id) => document.getElementById(id);
const alerts = new Alerts($("error"));
const form = $("preferences");
const saved = $("saved");

let channels = [];
let events = [];

const named = (names, key) => names[key] || key.replaceAll("_", " ");
const boxId = (channel, event) => `pref-${channel}-${event}`;

function capitalised(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function render(preferences) {
  channels = Object.keys(preferences.channels);
  events = preferences.events;
  const corner = document.createElement("th");
  corner.scope = "col";
  corner.textContent = "Event";
  $("matrix-head").replaceChildren(
    corner,
    ...channels.map((channel) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = named(CHANNEL_TITLES, channel);
      return th;
    }),
  );
  $("matrix-rows").replaceChildren(
    ...events.map((event) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = capitalised(named(EVENT_NAMES, event));
      tr.append(th);
      for (const channel of channels) {
        const td = document.createElement("td");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.id = boxId(channel, event);
        box.checked = preferences.channels[channel].includes(event);
        box.setAttribute("aria-label", `${named(CHANNEL_NAMES, channel)}: ${named(EVENT_NAMES, event)}`);
        td.append(box);
        tr.append(td);
      }
      return tr;
    }),
  );
  $("webhook-url").value = preferences.webhook_url || "";
  $("webhook-secret").value = "";
  $("secret-state").textContent = preferences.webhook_secret_set
    ? "A secret is set; leave the field empty to keep it."
    : "No secret is set, so calls are not signed.";
}

function body() {
  const secret = $("webhook-secret").value;
  return {
    channels: Object.fromEntries(
      channels.map((channel) => [channel, events.filter((event) => $(boxId(channel, event)).checked)]),
    ),
    webhook_url: $("webhook-url").value.trim() || null,
    webhook_secret: secret || null, // empty keeps the stored secret
  };
}

async function save(submit) {
  submit.preventDefault();
  alerts.clear("save");
  saved.textContent = "";
  $("save").disabled = true;
  try {
    render(await request(PREFERENCES, { method: "PUT", json: body() }));
    saved.textContent = `Preferences saved at ${formatClock(new Date())}.`;
  } catch (err) {
    alerts.set("save", err.message); // the server's own wording (docs/contract.md "Errors")
  } finally {
    $("save").disabled = false;
  }
}

async function main() {
  await requireUser();
  try {
    render(await request(PREFERENCES));
  } catch (err) {
    alerts.set("load", `The notification settings could not be loaded: ${err.message}`);
    return;
  }
  form.addEventListener("submit", save);
  // The confirmation speaks of the saved state: once anything changes it no longer holds.
  form.addEventListener("input", () => {
    saved.textContent = "";
  });
  $("save").disabled = false;
}

main();
