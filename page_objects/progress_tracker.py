"""The progress view of one batch: bar, counts, ETA, status, connection indicator, pause/resume/cancel."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Locator, Page

from .steps import step

TERMINAL_STATUSES = ("completed", "completed_with_errors", "failed", "cancelled")
UNFINISHED_STATUSES = ("queued", "running", "paused")

# Reads the panel the way a person does (by the labels on screen) and records every change it shows.
# Installed once per document; ``window.__batchqa`` survives until the next navigation.
_PROBE = r"""(panel) => {
  if (window.__batchqa && window.__batchqa.panel === panel) return;
  const byLabel = (label) => {
    for (const dd of panel.querySelectorAll("dd[aria-labelledby]")) {
      const dt = document.getElementById(dd.getAttribute("aria-labelledby"));
      if (dt && dt.textContent.trim() === label) return dd;
    }
    return null;
  };
  const text = (label) => { const dd = byLabel(label); return dd ? dd.textContent.trim() : null; };
  const count = (label) => {
    const found = (text(label) || "").replace(/,/g, "").match(/^(\d+)/);
    return found ? Number(found[1]) : null;
  };
  const read = () => {
    const bar = panel.querySelector("[role=progressbar]");
    const processed = (text("Processed") || "").replace(/,/g, "").match(/^(\d+) of (\d+)$/);
    const etaTime = byLabel("Time remaining")?.querySelector("time");
    const eta = etaTime ? (etaTime.getAttribute("datetime") || "").match(/^PT(\d+(?:\.\d+)?)S$/) : null;
    const connection = panel.querySelector("[role=status][aria-label=Connection]");
    return {
      status: (text("Status") || "").replace(/ /g, "_"),
      percent: bar && bar.hasAttribute("aria-valuenow") ? Number(bar.getAttribute("aria-valuenow")) : null,
      percent_text: text("Percent"),
      processed: processed ? Number(processed[1]) : null,
      total: processed ? Number(processed[2]) : null,
      succeeded: count("Succeeded"),
      failed: count("Failed"),
      eta_seconds: eta ? Number(eta[1]) : null,
      eta_text: text("Time remaining"),
      updated: text("Last update"),
      connection: connection ? connection.dataset.mode || null : null,
    };
  };
  const samples = [];
  let last = null;
  const record = () => {
    const sample = read();
    const key = JSON.stringify(sample);
    if (key !== last) {
      last = key;
      samples.push({ at: Date.now() / 1000, ...sample });
    }
  };
  const observer = new MutationObserver(record);
  // The page's own event loop, measured: a ticker every TICK_MS notes each time it ran late, so a gap between
  // updates can be told apart from a browser that got no CPU at all.
  const TICK_MS = 50, LATE_MS = 30;
  const stalls = [];
  let previous = performance.now();
  setInterval(() => {
    const now = performance.now();
    const late = now - previous - TICK_MS;
    previous = now;
    if (late > LATE_MS) stalls.push({ at: Date.now() / 1000, seconds: late / 1000 });
  }, TICK_MS);
  window.__batchqa = {
    panel, read, samples, stalls,
    start() {
      samples.length = 0;
      stalls.length = 0;
      last = null;
      observer.disconnect();
      observer.observe(panel, { subtree: true, childList: true, characterData: true, attributes: true });
      record();
    },
  };
}"""


@dataclass(frozen=True)
class ProgressSample:
    """What the progress view showed at one moment (``at``: seconds since the epoch, browser clock)."""

    at: float
    status: str
    percent: float | None
    percent_text: str | None
    processed: int | None
    total: int | None
    succeeded: int | None
    failed: int | None
    eta_seconds: float | None
    eta_text: str | None
    updated: str | None
    connection: str | None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_page(cls, data: dict[str, Any]) -> ProgressSample:
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})


class ProgressTracker:
    """The live view of one batch, as ``/batches/{id}`` shows it."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.panel = page.get_by_role("region", name="Progress")
        self.progress_bar = page.get_by_role("progressbar", name="Batch progress")
        # The figures are <dd> values labelled by their <dt> (aria-labelledby): the definition role takes no
        # accessible name, so they are found by label rather than by role.
        self.status = page.get_by_label("Status", exact=True)
        self.percent = page.get_by_label("Percent", exact=True)
        self.processed = page.get_by_label("Processed", exact=True)
        self.succeeded = page.get_by_label("Succeeded", exact=True)
        self.failed = page.get_by_label("Failed", exact=True)
        self.eta = page.get_by_label("Time remaining", exact=True)
        self.last_update = page.get_by_label("Last update", exact=True)
        self.connection = page.get_by_role("status", name="Connection")
        self.notification = page.get_by_role("status", name="Notification")
        self.error = page.get_by_role("alert")
        self.pause_button = page.get_by_role("button", name="Pause")
        self.resume_button = page.get_by_role("button", name="Resume")
        self.cancel_button = page.get_by_role("button", name="Cancel")

    @step("Open the progress view of batch {batch_id}")
    def open(self, batch_id: str) -> None:
        self.page.goto(f"/batches/{batch_id}")
        self.wait_until_loaded()

    @step("Reload the progress view")
    def reload(self) -> None:
        self.page.reload()
        self.wait_until_loaded()

    def wait_until_loaded(self, timeout: float = 15_000) -> None:
        """Wait until the view shows the batch's status (the page fetched it)."""
        self.status.filter(has_text=re.compile(r"^[a-z ]+$")).wait_for(timeout=timeout)

    @property
    def batch_id(self) -> str:
        return self.page.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]

    def _probe(self) -> None:
        self.panel.evaluate(_PROBE)

    def snapshot(self) -> ProgressSample:
        """What the view shows now."""
        self._probe()
        return ProgressSample.from_page(
            self.page.evaluate("() => ({ at: Date.now() / 1000, ...window.__batchqa.read() })")
        )

    @step("Start recording what the progress view shows")
    def start_recording(self) -> None:
        """Record every change of the view from now on (a MutationObserver in the page), for ``timeline()``."""
        self._probe()
        self.page.evaluate("() => window.__batchqa.start()")

    def timeline(self) -> list[ProgressSample]:
        """Every distinct state the view showed since ``start_recording()``, in order, with its time."""
        samples = self.page.evaluate("() => window.__batchqa ? window.__batchqa.samples : []")
        return [ProgressSample.from_page(sample) for sample in samples]

    def page_stalls(self) -> list[dict[str, float]]:
        """Each time since ``start_recording()`` that the page's event loop could not run for over 30 ms:
        ``{"at": epoch seconds when it ran again, "seconds": how long it was held up}``."""
        return self.page.evaluate("() => window.__batchqa ? window.__batchqa.stalls : []")

    def wait_for_updates(self, count: int = 1, timeout: float = 15_000) -> None:
        """Wait until the view has changed ``count`` more times (recording must be on)."""
        seen = self.page.evaluate("() => window.__batchqa.samples.length")
        self.page.wait_for_function(
            "(n) => window.__batchqa.samples.length >= n", arg=seen + count, timeout=timeout, polling="raf"
        )

    @step("Wait until the batch is {statuses}")
    def wait_until_status(self, *statuses: str, timeout: float = 60_000) -> str:
        """Wait until the view shows one of ``statuses`` or any final status; returns the status shown."""
        wanted = {*statuses, *TERMINAL_STATUSES}
        shown = "|".join(re.escape(status.replace("_", " ")) for status in sorted(wanted))
        self.status.filter(has_text=re.compile(rf"^({shown})$")).wait_for(timeout=timeout)
        return self.status.inner_text().strip().replace(" ", "_")

    @step("Wait until at least {at_least} rows are processed")
    def wait_until_processed(self, at_least: int, timeout: float = 60_000) -> ProgressSample:
        """Wait until the view shows at least ``at_least`` rows processed, or a final status."""
        self._probe()
        self.page.wait_for_function(
            """([n, final]) => { const s = window.__batchqa.read();
                 return (s.processed !== null && s.processed >= n) || final.includes(s.status); }""",
            arg=[at_least, list(TERMINAL_STATUSES)],
            timeout=timeout,
        )
        return self.snapshot()

    def wait_until_finished_again(self, timeout: float = 60_000) -> str:
        """Wait until the recording shows the batch unfinished and then finished again (after a retry)."""
        self.page.wait_for_function(
            """([open, final]) => {
                 const samples = window.__batchqa.samples;
                 const reopened = samples.findIndex((s) => open.includes(s.status));
                 return reopened >= 0 && samples.slice(reopened + 1).some((s) => final.includes(s.status));
               }""",
            arg=[list(UNFINISHED_STATUSES), list(TERMINAL_STATUSES)],
            timeout=timeout,
        )
        return self.snapshot().status

    def wait_until_steady(self, seconds: float = 1.5, timeout: float = 30_000) -> ProgressSample:
        """Wait until the recording shows the processed count unchanged over ``seconds`` and two updates or more.

        After a pause, rows already in flight may still land; once the count holds still they have.
        """
        self.page.wait_for_function(
            """(seconds) => {
                 const samples = window.__batchqa.samples;
                 const last = samples[samples.length - 1];
                 if (!last || last.processed === null) return false;
                 let first = samples.length - 1;
                 while (first > 0 && samples[first - 1].processed === last.processed) first -= 1;
                 return samples.length - 1 - first >= 1 && last.at - samples[first].at >= seconds;
               }""",
            arg=seconds,
            timeout=timeout,
        )
        return self.snapshot()

    def wait_until_estimated(self, timeout: float = 30_000) -> ProgressSample:
        """Wait until the view shows a time-remaining estimate (or a final status); returns what it shows."""
        self._probe()
        self.page.wait_for_function(
            """(final) => { const s = window.__batchqa.read();
                 return s.eta_seconds !== null || final.includes(s.status); }""",
            arg=list(TERMINAL_STATUSES),
            timeout=timeout,
        )
        return self.snapshot()

    @step("Wait until the connection is {modes}")
    def wait_until_connection(self, *modes: str, timeout: float = 15_000) -> str:
        """Wait until the connection indicator is in one of ``modes`` (live, polling, reconnecting...)."""
        self._probe()
        self.page.wait_for_function(
            "(modes) => modes.includes(window.__batchqa.read().connection)", arg=list(modes), timeout=timeout
        )
        return self.connection_mode()

    def connection_mode(self) -> str:
        return self.connection.get_attribute("data-mode") or ""

    def _act(self, action: str, button: Locator) -> None:
        with self.page.expect_response(
            lambda response: response.request.method == "POST" and response.url.endswith(f"/{action}")
        ):
            button.click()

    @step("Pause the batch")
    def pause(self) -> None:
        self._act("pause", self.pause_button)

    @step("Resume the batch")
    def resume(self) -> None:
        self._act("resume", self.resume_button)

    @step("Cancel the batch")
    def cancel(self) -> None:
        self._act("cancel", self.cancel_button)
