"""Checks over what the progress view showed, the capability gate for running batches, and notification helpers."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

from playwright.sync_api import BrowserContext, Page
from websockets.exceptions import InvalidHandshake

from page_objects import ProgressSample, ProgressTracker
from utilities.client.api import TERMINAL_STATUSES, BatchApi
from utilities.client.socket_probe import probe_socket
from utilities.paths import SAMPLE_FILES_DIR
from utilities.pytest_plugin import lacks_capability

FIXTURE_FILES = SAMPLE_FILES_DIR

TOO_FAST = "needs a target whose batches take visible time; this one went too fast to act on from the page"


def progress_problems(timeline: Sequence[ProgressSample]) -> list[str]:
    """Everything the view showed that a correct progress display would not: going backwards, wrong sums."""
    problems = []
    for earlier, later in itertools.pairwise(timeline):
        if None not in (earlier.processed, later.processed) and later.processed < earlier.processed:
            problems.append(f"processed went back from {earlier.processed} to {later.processed}")
        if None not in (earlier.percent, later.percent) and later.percent < earlier.percent:
            problems.append(f"percent went back from {earlier.percent} to {later.percent}")
    for sample in timeline:
        if sample.processed is None or not sample.total:
            continue
        expected = 100 * sample.processed / sample.total
        if sample.percent is None or abs(sample.percent - expected) > 0.05:
            problems.append(f"progressbar says {sample.percent}% for {sample.processed} of {sample.total}")
        if sample.percent is not None and sample.percent_text != f"{sample.percent:.1f}%":
            problems.append(f"percent text {sample.percent_text!r} disagrees with the progressbar {sample.percent}")
        if None not in (sample.succeeded, sample.failed) and sample.succeeded + sample.failed > sample.processed:
            problems.append(f"{sample.succeeded} succeeded + {sample.failed} failed > {sample.processed} processed")
    return problems


def require_running(
    tracker: ProgressTracker, *, min_remaining_s: float = 5.0, timeout: float = 30_000
) -> ProgressSample:
    """Wait until the page shows the batch running with time left; skip, naming the capability, if it has none.

    Pausing, cancelling, reloading or watching a batch from the browser needs a batch that is still going
    after the page has loaded and a few actions have been taken. The target's own estimate (``eta_seconds``)
    says whether it will be: below ``min_remaining_s`` the test is skipped with the reason, rather than left
    to race the target. The bundled backend is slowed down for this (``E2E_BACKEND_ENV`` in
    utilities/procs/backend.py); a foreign target needs the same, e.g. BATCHQA_PROVIDER_LATENCY_MS=200
    BATCHQA_WORKER_CONCURRENCY=2 on a reference backend.
    """
    status = tracker.wait_until_status("running", timeout=timeout)
    if status != "running":
        lacks_capability(f"{TOO_FAST}: it was already {status} when the progress view loaded")
    sample = tracker.wait_until_estimated(timeout=timeout)
    if sample.finished:
        lacks_capability(f"{TOO_FAST}: it was {sample.status} before the page showed a first estimate")
    if sample.eta_seconds is not None and sample.eta_seconds < min_remaining_s:
        lacks_capability(
            f"{TOO_FAST}: it estimated {sample.eta_seconds:.0f} s left, under the {min_remaining_s:.0f} s needed"
        )
    return sample


def ahead(sample: ProgressSample, rows: int) -> int:
    """``rows`` more than ``sample`` showed processed, capped at the batch's total."""
    assert sample.processed is not None and sample.total is not None, sample
    return min(sample.processed + rows, sample.total)


def progress_socket_available(base_url: str, api: BatchApi, batch_id: str) -> bool:
    """Whether the target speaks the progress WebSocket (docs/contract.md): one message within 3 s."""
    try:
        outcome = probe_socket(
            base_url, batch_id, headers={"Authorization": f"Bearer {api.token}"}, until_messages=1, timeout=3
        )
    except (OSError, TimeoutError, InvalidHandshake, ValueError):
        return False
    return isinstance(outcome.first, dict) and "type" in outcome.first


def wait_until_settled(api: BatchApi, batch_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The batch's outbox once the batch has ended and every delivery is sent or given up.

    A batch's notifications are stored in the transaction that moves the batch, so once its status is final
    the outbox holds every delivery it will ever get; none pending means nothing more will arrive anywhere.
    """
    deadline = time.monotonic() + timeout
    while True:
        finished = api.status(batch_id)["status"] in TERMINAL_STATUSES
        response = api.http.get("/api/v1/notifications/deliveries", params={"batch_id": batch_id})
        response.raise_for_status()
        entries = response.json()["deliveries"]
        if finished and all(entry["status"] != "pending" for entry in entries):
            return entries
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id}: deliveries not settled after {timeout:.0f} s: {entries}")
        time.sleep(0.1)  # the poll interval; the loop ends on the condition above


# Wraps window.Notification so every browser notification a page raises is recorded (the real constructor
# still runs), and makes the tab's visibility a switch the test throws. Headless Chromium reports every tab
# as visible, whatever is in front: checked with a second page brought to front, window.open into the same
# window, a minimised window (CDP Browser.setWindowBounds) and focus emulation off, so document.hidden and
# visibilityState are overridden here and visibilitychange is dispatched as a browser would. window.focus()
# shows the tab again, as a real browser does when a notification click focuses it. State lives in
# sessionStorage, so it outlasts the navigation a click starts, as a real tab's does.
PUSH_RECORDER = """(() => {
  const KEY = "batchqa-e2e-push";
  let memory = { hidden: false, focusCalls: 0 };
  const read = () => {
    try { return JSON.parse(sessionStorage.getItem(KEY)) || memory; } catch { return memory; }
  };
  const write = (state) => {
    memory = state;
    try { sessionStorage.setItem(KEY, JSON.stringify(state)); } catch { /* about:blank has no storage */ }
  };
  const setHidden = (hidden) => {
    const state = read();
    if (state.hidden !== hidden) {
      write({ ...state, hidden });
      document.dispatchEvent(new Event("visibilitychange"));
    }
  };
  Object.defineProperty(document, "hidden", { configurable: true, get: () => read().hidden });
  Object.defineProperty(document, "visibilityState", {
    configurable: true, get: () => (read().hidden ? "hidden" : "visible"),
  });
  const shown = [];
  if (window.Notification) {
    window.Notification = class RecordedNotification extends window.Notification {
      constructor(title, options = {}) {
        super(title, options);
        const { body = null, tag = null } = options;
        shown.push({ title, body, tag, hidden: document.hidden, self: this });
      }
    };
  }
  const focus = window.focus.bind(window);
  window.focus = () => {
    const state = read();
    write({ ...state, focusCalls: state.focusCalls + 1 });
    setHidden(false);
    focus();
  };
  window.__batchqaPush = {
    hide: () => setHidden(true),
    count: () => shown.length,
    records: () => shown.map(({ self, ...record }) => record),
    click: (index) => shown[index].self.dispatchEvent(new Event("click")),
    focusCalls: () => read().focusCalls,
  };
})();"""


class BrowserPush:
    """Browser notifications in a context: permission granted, and every one a page raises recorded.

    Real: the permission (``grant_permissions``), the page's ``Notification.permission`` check, the real
    ``Notification`` constructor. Simulated: the tab going to the background (see ``PUSH_RECORDER``) and the
    user's click on the notification (a ``click`` event dispatched on it; headless has no notification UI).
    """

    def __init__(self, context: BrowserContext, origin: str) -> None:
        context.grant_permissions(["notifications"], origin=origin)
        context.add_init_script(PUSH_RECORDER)

    @staticmethod
    def send_to_background(page: Page) -> None:
        page.evaluate("() => window.__batchqaPush.hide()")

    @staticmethod
    def shown(page: Page) -> list[dict[str, Any]]:
        """What the page raised since it loaded: title, body, tag, and whether the tab was hidden then."""
        return page.evaluate("() => window.__batchqaPush.records()")

    @staticmethod
    def wait_for(page: Page, count: int = 1, timeout: float = 30_000) -> list[dict[str, Any]]:
        page.wait_for_function(
            "(n) => window.__batchqaPush && window.__batchqaPush.count() >= n", arg=count, timeout=timeout, polling=100
        )
        return BrowserPush.shown(page)

    @staticmethod
    def click(page: Page, index: int = 0) -> None:
        page.evaluate("(i) => window.__batchqaPush.click(i)", index)

    @staticmethod
    def focus_calls(page: Page) -> int:
        return page.evaluate("() => window.__batchqaPush.focusCalls()")
