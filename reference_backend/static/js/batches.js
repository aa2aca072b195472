// Every batch of the user, refreshed every 2 s while any of them is still going.

import { request, TERMINAL } from "./api.js";
import { POLL_MS } from "./feed.js";
import { Alerts, batchName, formatCount, requireUser, statusLabel } from "./shell.js";

const alerts = new Alerts(document.getElementById("error"));

function row(batch) {
  const tr = document.createElement("tr");
  const name = document.createElement("th");
  name.scope = "row";
  const link = document.createElement("a");
  link.href = `/batches/${encodeURIComponent(batch.batch_id)}`;
  link.textContent = batchName(batch);
  name.append(link);

  const percent = Number(batch.percent ?? 0);
  const progress = document.createElement("td");
  const bar = document.createElement("div");
  bar.className = "progress small";
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-label", `Progress of ${batchName(batch)}`);
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  bar.setAttribute("aria-valuenow", String(percent));
  const fill = document.createElement("div");
  fill.className = "bar";
  fill.style.width = `${Math.min(100, percent)}%`;
  bar.append(fill);
  progress.append(`${percent.toFixed(1)}%`, bar);

  const cells = [
    statusLabel(batch.status),
    null,
    `${formatCount(batch.processed)} of ${formatCount(batch.total)}`,
    formatCount(batch.failed),
    batch.created_at ? new Date(batch.created_at).toLocaleString("en-GB") : "",
  ];
  tr.append(name);
  for (const text of cells) {
    if (text === null) {
      tr.append(progress);
    } else {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
  }
  return tr;
}

async function refresh() {
  let batches;
  try {
    batches = (await request("/api/v1/batch")).batches;
    alerts.clear("list");
  } catch (err) {
    alerts.set("list", `The list could not be refreshed: ${err.message} Retrying every 2 s.`);
    setTimeout(refresh, POLL_MS);
    return;
  }
  document.getElementById("batch-rows").replaceChildren(...batches.map(row));
  const running = batches.filter((b) => !TERMINAL.has(b.status)).length;
  document.getElementById("summary").textContent = batches.length
    ? `${formatCount(batches.length)} batches, ${formatCount(running)} still going.`
    : "No batches yet. Start one from New batch.";
  if (running) {
    setTimeout(refresh, POLL_MS);
  }
}

await requireUser();
refresh();
