// The upload page: one file (picker or drag-and-drop) or pasted prompts, checked here, then sent.

import { ApiError, NetworkError, request } from "./api.js";
import { Alerts, formatBytes, formatCount, requireUser } from "./shell.js";

// The contract's limits (docs/contract.md, US-003): checked here so a user hears at once, and by the server.
const MAX_BYTES = 10 * 1024 * 1024;
const ALLOWED = [".csv", ".xlsx", ".txt", ".json", ".jsonl"];
const UPLOAD_TIMEOUT_MS = 120000;

const $ = (id) => document.getElementById(id);
const alerts = new Alerts($("error"));
const dropZone = $("drop-zone");
const fileInput = $("file-input");
const paste = $("paste");
const start = $("start");
const retry = $("retry-upload");
const state = $("upload-state");

let selected = null;

function extension(name) {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? "" : name.slice(dot).toLowerCase();
}

// The client-side checks: how many files, which type, how big. Returns the refusal, or null.
function refusal(files) {
  if (files.length > 1) {
    const names = [...files].map((f) => f.name).join(", ");
    return `Upload one file at a time; you gave ${files.length} files (${names}).`;
  }
  const file = files[0];
  if (!ALLOWED.includes(extension(file.name))) {
    return `${file.name} is not a supported file type. Use a .csv, .xlsx, .txt, .json or .jsonl file.`;
  }
  if (file.size > MAX_BYTES) {
    return (
      `${file.name} is ${formatBytes(file.size)} (${formatCount(file.size)} bytes); ` +
      `the limit is 10 MB (${formatCount(MAX_BYTES)} bytes).`
    );
  }
  return null;
}

function select(file) {
  selected = file;
  $("selected-file").textContent = file ? `Selected: ${file.name} (${formatBytes(file.size)})` : "";
  $("clear-file").hidden = !file;
}

function takeFiles(files) {
  alerts.clear("upload");
  retry.hidden = true;
  if (!files || files.length === 0) {
    return;
  }
  const problem = refusal(files);
  if (problem) {
    select(null);
    alerts.set("upload", problem);
    return;
  }
  select(files[0]);
}

function busy(on) {
  start.disabled = on;
  retry.disabled = on;
  start.setAttribute("aria-busy", String(on));
  state.textContent = on ? "Uploading…" : "";
}

async function send() {
  alerts.clear("upload");
  retry.hidden = true;
  const form = new FormData();
  if (selected) {
    form.append("file", selected, selected.name);
  } else if (paste.value.trim()) {
    const size = new TextEncoder().encode(paste.value).length;
    if (size > MAX_BYTES) {
      alerts.set("upload", `The pasted text is ${formatCount(size)} bytes; the limit is ${formatCount(MAX_BYTES)}.`);
      return;
    }
    form.append("text", paste.value);
  } else {
    alerts.set("upload", "Choose a file, drop one here, or paste at least one prompt.");
    return;
  }
  busy(true);
  try {
    const accepted = await request("/api/v1/batch/upload", { method: "POST", body: form, timeoutMs: UPLOAD_TIMEOUT_MS });
    location.assign(`/batches/${encodeURIComponent(accepted.batch_id)}`);
  } catch (err) {
    busy(false);
    if (err instanceof NetworkError) {
      const what = selected ? selected.name : "your prompts";
      alerts.set("upload", `The upload did not reach the server: ${err.message} Nothing was lost: ${what} is still here. Check the connection, then press Retry upload.`);
      retry.hidden = false;
    } else if (err instanceof ApiError) {
      alerts.set("upload", err.message);
    } else {
      alerts.set("upload", String(err));
    }
  }
}

$("choose-file").addEventListener("click", () => fileInput.click());
fileInput.addEventListener("change", () => {
  takeFiles(fileInput.files);
  fileInput.value = "";  // choosing the same file again must fire change again
});
$("clear-file").addEventListener("click", () => {
  select(null);
  alerts.clear("upload");
});

for (const type of ["dragenter", "dragover"]) {
  dropZone.addEventListener(type, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  takeFiles(event.dataTransfer ? event.dataTransfer.files : []);
});
// A file dropped beside the zone must not make the browser navigate away to it.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

paste.addEventListener("input", () => {
  if (selected && paste.value.trim()) {
    select(null);
    state.textContent = "The pasted prompts replace the selected file.";
  }
});

start.addEventListener("click", send);
retry.addEventListener("click", send);

requireUser();
