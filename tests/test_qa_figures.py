"""What ``make qa`` reads back from its stages' reports: JUnit counts, and the browser suite's own budgets (the
100-prompt time and the page cadence, judged less the page's measured stalls) as rows of its summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from utilities.client.cadence import page_cadence
from utilities.qa.figures import e2e_budgets, junit_counts
from utilities.qa.run_paths import Paths

pytestmark = pytest.mark.area("Reporting")

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4" failures="1" errors="0" skipped="1">
<testcase classname="e2e.browser.test_batch_performance" name="test_hundred_prompts[chromium]">
  <properties><property name="hundred_prompts_s" value="{hundred}"/></properties></testcase>
<testcase classname="e2e.browser.test_batch_performance" name="test_page_updates[chromium-polling-only]">
  <properties><property name="update_cadence" value="{cadence}"/></properties></testcase>
</testsuite></testsuites>
"""


def write(tmp_path: Path, *, hundred: float, cadence: str) -> Paths:
    paths = Paths(tmp_path)
    paths.qa.mkdir(parents=True)
    paths.e2e_junit.write_text(JUNIT.format(hundred=hundred, cadence=cadence), encoding="utf-8")
    return paths


def test_counts_come_from_the_junit_report(tmp_path: Path) -> None:
    paths = write(tmp_path, hundred=12.5, cadence="")
    assert junit_counts(paths.e2e_junit) == {"passed": "2", "failed": "1", "skipped": "1"}
    assert junit_counts(tmp_path / "none.xml") == {"tests": "no JUnit report written"}


def test_a_starved_page_passes_on_its_judged_gap_and_a_frozen_one_fails(tmp_path: Path) -> None:
    timeline = [{"at": t, "status": "running", "connection": "polling"} for t in (0.0, 2.0, 4.9, 6.9)]
    starved = page_cadence(timeline, [{"at": 4.9, "seconds": 0.8}]).summary()
    frozen = page_cadence(timeline).summary()

    [hundred, gap] = e2e_budgets(write(tmp_path / "starved", hundred=12.5, cadence=starved))
    [_, frozen_gap] = e2e_budgets(write(tmp_path / "frozen", hundred=75.0, cadence=frozen))

    assert hundred["result"] == "pass" and hundred["value"] == "12.5 s"
    assert (gap["value"], gap["result"]) == ("2.10 s", "pass")
    assert "polling-only" in gap["metric"]
    assert (frozen_gap["value"], frozen_gap["result"]) == ("2.90 s", "fail")
