"""The progress view's cadence: gaps judged less the page's own measured stalls, on made-up timelines, and the
stall probe itself in a real browser with the main thread blocked on purpose."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, sync_playwright

from page_objects import ProgressTracker
from utilities.client.cadence import PageCadence, page_cadence, percentile
from utilities.procs.browser import SYSTEM_ARGS, find_chromium

pytestmark = pytest.mark.area("Performance tooling")


def timeline(*times: float, final_at: float | None = None) -> list[dict[str, object]]:
    samples = [{"at": at, "status": "running", "connection": "polling"} for at in times]
    if final_at is not None:
        samples.append({"at": final_at, "status": "completed", "connection": "polling"})
    return samples


def test_a_page_on_schedule_has_no_problems() -> None:
    cadence = page_cadence(timeline(0.0, 2.0, 4.01, 6.0, final_at=8.02))
    assert cadence.problems() == []
    assert cadence.gaps_s == pytest.approx([2.0, 2.01, 1.99, 2.02])


def test_a_frozen_page_is_late_however_the_rest_looks() -> None:
    cadence = page_cadence(timeline(0.0, 2.0, 6.5, 8.5))
    assert cadence.late == pytest.approx([4.5])
    assert "1 of 3 gaps" in cadence.problems()[0]


def test_a_stall_inside_a_gap_is_taken_off_that_gap_only() -> None:
    # The event loop was held from 3.9 to 4.7; the update due at 4.0 came at 4.6, the ticker ran just after.
    stalls = [{"at": 4.7, "seconds": 0.8}]
    cadence = page_cadence(timeline(0.0, 2.0, 4.6, 6.0), stalls)
    assert cadence.stalled_s == pytest.approx([0.0, 0.7, 0.1])
    assert cadence.judged_s == pytest.approx([2.0, 1.9, 1.3])
    assert cadence.problems() == []


def test_a_frozen_page_whose_event_loop_ran_freely_is_not_excused() -> None:
    # Small stalls (timer jitter) cannot cover a 2 s silence.
    stalls = [{"at": 3.0 + i * 0.5, "seconds": 0.04} for i in range(6)]
    cadence = page_cadence(timeline(0.0, 2.0, 6.0), stalls)
    assert cadence.late == pytest.approx([4.0 - 0.24])


def test_a_stall_never_makes_a_gap_negative() -> None:
    cadence = page_cadence(timeline(0.0, 1.0), [{"at": 1.0, "seconds": 5.0}])
    assert cadence.judged_s == [0.0]


def test_only_samples_up_to_the_first_final_status_count() -> None:
    samples = timeline(0.0, 2.0, final_at=4.0) + timeline(60.0)
    assert page_cadence(samples).gaps_s == pytest.approx([2.0, 2.0])


def test_summary_names_the_judged_maximum_the_qa_summary_reads() -> None:
    cadence = page_cadence(timeline(0.0, 2.0, 5.0), [{"at": 5.0, "seconds": 0.9}])
    assert "max 3.00 s, judged max 2.10 s" in cadence.summary()


@pytest.mark.parametrize("q", [5, 50, 90, 95, 99])
def test_percentile_is_the_stdlib_inclusive_definition(q: int) -> None:
    values = [0.3, 1.9, 2.0, 2.05, 2.1, 2.4, 3.7, 1.2]
    assert percentile(values, q) == pytest.approx(statistics.quantiles(values, n=100, method="inclusive")[q - 1])
    assert percentile(values, 0) == min(values) and percentile(values, 100) == max(values)
    assert percentile([], 50) is None and percentile([4.0], 95) == 4.0


def test_percentile_between_whole_percents_interpolates() -> None:
    assert percentile([0.0, 10.0], 12.5) == pytest.approx(1.25)


# The probe in a real browser: a blocked main thread is measured, a silent page is not excused.

PANEL = """<section role="region" aria-label="Progress">
  <dl><dt id="s">Status</dt><dd aria-labelledby="s" id="status">Running</dd></dl>
</section>"""


@pytest.fixture(scope="module")
def probe_page() -> Iterator[Page]:
    chromium = find_chromium()
    if chromium is None:
        pytest.fail("no Chromium: run `make setup` (it installs one)")
    with sync_playwright() as playwright:
        launch = {} if chromium.kind == "playwright" else {"executable_path": str(chromium.path)}
        browser = playwright.chromium.launch(args=list(SYSTEM_ARGS), **launch)
        yield browser.new_page()
        browser.close()


def show(page: Page, status: str) -> None:
    page.evaluate("(s) => { document.getElementById('status').textContent = s; }", status)


def test_the_probe_measures_a_blocked_main_thread_and_excuses_it(probe_page: Page) -> None:
    page = probe_page
    page.set_content(PANEL)
    tracker = ProgressTracker(page)
    tracker.start_recording()
    page.evaluate("() => new Promise((done) => setTimeout(done, 200))")  # the ticker has run a few times
    show(page, "Paused")
    # The page's event loop is held for 2.6 s, then the view changes at once: a starved browser, not a fault.
    page.evaluate("() => { const end = performance.now() + 2600; while (performance.now() < end) {} }")
    show(page, "Running")
    stalls = tracker.page_stalls()
    assert sum(stall["seconds"] for stall in stalls) >= 2.5
    cadence = page_cadence(tracker.timeline()[1:], stalls)
    assert cadence.gaps_s[0] > 2.5
    assert cadence.judged_s[0] < 1.0 and cadence.problems() == [], cadence.summary()


def test_the_probe_does_not_excuse_a_page_that_was_merely_silent(probe_page: Page) -> None:
    page = probe_page
    page.set_content(PANEL)
    tracker = ProgressTracker(page)
    tracker.start_recording()
    show(page, "Paused")
    page.evaluate("() => new Promise((done) => setTimeout(done, 4000))")  # a view that did not update
    show(page, "Running")
    cadence: PageCadence = page_cadence(tracker.timeline()[1:], tracker.page_stalls())
    assert cadence.gaps_s[0] > 3.9
    assert cadence.judged_s[0] > 2.35, cadence.summary()
    assert cadence.problems() != []
