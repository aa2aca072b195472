// One batch: live progress (feed.js), pause/resume/cancel, downloads, a preview and retry of failed rows.

import { ApiError, request, TERMINAL } from "./api.js";
import { MODE_TEXT, ProgressFeed } from "./feed.js";
import { Alerts, batchName, formatClock, formatCount, formatDuration, requireUser, statusLabel } from "./shell.js";

const PREVIEW_ROWS = 10;
const $ = (id) => document.getElementById(id);
const batchId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const alerts = new Alerts($("error"));
const api = (path) => `/api/v1/batch${path}`;
// Defects the reference backend's fault switch asks this page to have (see docs/faults.md); normally none.
const uiFaults = new Set((document.querySelector('meta[name="batchqa-faults"]')?.content ?? "").split(",").filter(Boolean));
let barDrawn = false;

let current = {};
let previewFor = null; // the seq the preview was drawn for

const feed = new ProgressFeed(batchId, {
  onStatus: show,
  onMode: (mode) => {
    const element = $("connection");
    element.dataset.mode = mode;
    element.textContent = MODE_TEXT[mode] || mode;
  },
  onProblem: (text) => alerts.set("connection", text),
});

function timeElement(datetime, text) {
  const time = document.createElement("time");
  time.dateTime = datetime;
  time.textContent = text;
  return time;
}

function etaContent(batch) {
  if (TERMINAL.has(batch.status)) {
    return "—";
  }
  if (batch.status === "paused") {
    return "Paused";
  }
  if (batch.eta_seconds === null || batch.eta_seconds === undefined) {
    return "Estimating…";
  }
  const seconds = Math.max(0, Math.round(batch.eta_seconds));
  return timeElement(`PT${seconds}S`, `about ${formatDuration(seconds)}`);
}

function notice(batch) {
  const total = formatCount(batch.total);
  switch (batch.status) {
    case "completed":
      return ["", `Batch completed: all ${total} prompts enhanced.`];
    case "completed_with_errors":
      return [
        "with-errors",
        `Batch completed with errors: ${formatCount(batch.succeeded)} enhanced, ${formatCount(batch.failed)} failed. ` +
          "Failed rows are marked in the results; you can retry them.",
      ];
    case "failed":
      return ["failed", `Batch failed: none of the ${total} prompts could be enhanced.`];
    case "cancelled":
      return ["cancelled", `Batch cancelled after ${formatCount(batch.processed)} of ${total} prompts.`];
    case "paused":
      return ["", "Batch paused: no new prompts start until you resume."];
    default:
      return ["", ""];
  }
}

function show(status) {
  current = { ...current, ...status };
  const b = current;
  const percent = Number(b.percent ?? 0);
  document.title = `${batchName(b)} · batchqa`;
  $("title").textContent = batchName(b);
  const created = b.created_at ? new Date(b.created_at).toLocaleString("en-GB") : "";
  $("subtitle").textContent = `${formatCount(b.total)} prompts${created ? ` · created ${created}` : ""} · batch ${b.batch_id}`;

  if (!(barDrawn && uiFaults.has("ui_frozen_progress"))) {
    const bar = $("progressbar");
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", `${percent.toFixed(1)}% (${formatCount(b.processed)} of ${formatCount(b.total)} processed)`);
    $("bar").style.width = `${Math.min(100, percent)}%`;
    barDrawn = true;
  }

  $("status").textContent = statusLabel(b.status);
  $("percent").textContent = `${percent.toFixed(1)}%`;
  $("processed").textContent = `${formatCount(b.processed)} of ${formatCount(b.total)}`;
  $("succeeded").textContent = formatCount(b.succeeded);
  $("failed").textContent = formatCount(b.failed);
  $("eta").replaceChildren(etaContent(b));
  const now = new Date();
  $("updated").replaceChildren(timeElement(now.toISOString(), formatClock(now)));

  $("pause").disabled = !["queued", "running"].includes(b.status);
  $("resume").disabled = b.status !== "paused";
  $("cancel").disabled = !["queued", "running", "paused"].includes(b.status);
  $("retry-failed").hidden = !(["completed_with_errors", "failed"].includes(b.status) && b.failed > 0);

  const [tone, text] = notice(b);
  $("notice").className = `notice ${tone}`.trim();
  $("notice").textContent = text;

  if (TERMINAL.has(b.status) && previewFor !== b.seq) {
    previewFor = b.seq;
    loadPreview();
  }
}

function cell(tag, text, className) {
  const element = document.createElement(tag);
  element.textContent = text;
  if (className) {
    element.className = className;
  }
  return element;
}

function longCell(text) {
  const td = cell("td", "", "clip");
  const inner = cell("div", text, "clamp");
  td.append(inner);
  return td;
}

async function loadPreview() {
  $("preview-hint").textContent = "Loading the preview…";
  let results;
  try {
    results = await request(`${api(`/download/${encodeURIComponent(batchId)}`)}?format=json`);
  } catch (err) {
    $("preview-hint").textContent = "";
    alerts.set("preview", `The preview could not be loaded: ${err.message}`);
    return;
  }
  alerts.clear("preview");
  const columns = results.columns || [];
  const promptColumn = columns.find((name) => name.trim().toLowerCase() === "prompt") || columns[0];
  const rows = results.rows.slice(0, PREVIEW_ROWS);
  const body = $("preview-rows");
  body.replaceChildren(
    ...rows.map((row) => {
      const tr = document.createElement("tr");
      if (row.status === "failed") {
        tr.className = "row-failed";
      }
      const header = cell("th", String(row.row_number));
      header.scope = "row";
      tr.append(
        header,
        longCell(row.fields[promptColumn] ?? ""),
        longCell(row.enhanced_prompt ?? ""),
        cell("td", (row.techniques || []).join(", ")),
        cell("td", row.status, "status"),
        cell("td", row.error ?? ""),
      );
      return tr;
    }),
  );
  $("preview-caption").textContent = `Preview: first ${formatCount(rows.length)} of ${formatCount(results.rows.length)} rows`;
  $("preview").hidden = false;
  $("preview-hint").textContent = "Failed rows are highlighted and carry the reason in the Error column.";
}

async function act(action) {
  alerts.clear("action");
  for (const id of ["pause", "resume", "cancel", "retry-failed"]) {
    $(id).disabled = true;
  }
  try {
    const status = await request(api(`/${encodeURIComponent(batchId)}/${action}`), { method: "POST" });
    if (action === "retry") {
      previewFor = null;
      $("preview").hidden = true;
      $("preview-hint").textContent = "The failed rows are running again; the preview refreshes when they finish.";
      feed.deliver(status);
      feed.start(status.seq);
    } else {
      feed.deliver(status);
    }
  } catch (err) {
    alerts.set("action", err.message);
    refresh();
  }
}

async function refresh() {
  try {
    feed.deliver(await request(api(`/status/${encodeURIComponent(batchId)}`)));
  } catch (err) {
    alerts.set("load", err.message);
  }
}

async function main() {
  for (const format of ["csv", "json", "zip"]) {
    const served = format === "csv" && uiFaults.has("ui_wrong_download") ? "json" : format;
    $(`download-${format}`).href = `${api(`/download/${encodeURIComponent(batchId)}`)}?format=${served}`;
  }
  $("pause").addEventListener("click", () => act("pause"));
  $("resume").addEventListener("click", () => act("resume"));
  $("cancel").addEventListener("click", () => act("cancel"));
  $("retry-failed").addEventListener("click", () => act("retry"));

  await requireUser();
  let status;
  try {
    status = await request(api(`/status/${encodeURIComponent(batchId)}`));
  } catch (err) {
    alerts.set("load", err instanceof ApiError ? err.message : `The batch could not be loaded: ${err.message}`);
    return;
  }
  show(status);
  if (TERMINAL.has(status.status)) {
    feed.setMode("finished");
  } else {
    feed.start(status.seq);
  }
}

main();
