"""The figures ``make qa`` summarises, read from what each stage left under ``reports/``: JUnit counts and the
e2e suite's measured budgets, the load run's throughput, the gate's verdicts and key figures, the report's size."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from utilities.client.cadence import TIMER_SLACK_S
from utilities.client.spec_numbers import HUNDRED_PROMPTS_BUDGET_S, UPDATE_EVERY_S
from utilities.procs.video import video_available
from utilities.qa.run_paths import Paths

# Gated metrics shown in the summary (all of them are in reports/qa/gate.txt and the Allure report).
HEADLINE_METRICS = (
    "1000-prompt batch",
    "upload",
    "socket lag",
    "socket_gap_max_ms",
    "failure_ratio",
    "validation_failures",
    "memory_growth_mb",
)


def junit_counts(path: Path) -> dict[str, str]:
    if not path.exists():
        return {"tests": "no JUnit report written"}
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = failures = errors = skipped = 0
    for suite in suites:
        total += int(suite.get("tests", 0))
        failures += int(suite.get("failures", 0))
        errors += int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return {
        "passed": str(total - failures - errors - skipped),
        "failed": str(failures + errors),
        "skipped": str(skipped),
    }


def junit_properties(path: Path) -> list[tuple[str, str, str]]:
    """``(test name, property, value)`` for every ``user_properties`` entry the tests recorded."""
    if not path.exists():
        return []
    found = []
    for case in ET.parse(path).getroot().iter("testcase"):
        for prop in case.iter("property"):
            found.append((case.get("name", ""), prop.get("name", ""), prop.get("value", "")))
    return found


_MAX_GAP = re.compile(r"judged max (\d+(?:\.\d+)?) s")


def e2e_budgets(paths: Paths) -> list[dict[str, str]]:
    """The browser suite's own measurements against the spec's numbers, as rows of the baselines table."""
    rows = []
    for test, name, value in junit_properties(paths.e2e_junit):
        if name == "hundred_prompts_s":
            seconds = float(value)
            rows.append(
                {
                    "metric": "100 prompts through the UI (e2e)",
                    "value": f"{seconds:.1f} s",
                    "baseline": "–",
                    "threshold": f"< {HUNDRED_PROMPTS_BUDGET_S:.0f} s",
                    "result": "pass" if seconds < HUNDRED_PROMPTS_BUDGET_S else "fail",
                }
            )
        elif name == "update_cadence" and (match := _MAX_GAP.search(value)):
            transport = test.split("[", 1)[-1].rstrip("]").removeprefix("chromium-") if "[" in test else ""
            gap = float(match.group(1))
            rows.append(
                {
                    "metric": f"longest gap between page updates less page stalls, {transport} (e2e)",
                    "value": f"{gap:.2f} s",
                    "baseline": "–",
                    "threshold": f"≤ {UPDATE_EVERY_S + TIMER_SLACK_S:.2f} s",
                    "result": "pass" if gap <= UPDATE_EVERY_S + TIMER_SLACK_S else "fail",
                }
            )
    return rows


def e2e_figures(paths: Paths) -> dict[str, str]:
    kept = "trace, screenshot, video" if video_available() else "trace, screenshot (no video: no ffmpeg)"
    return {**junit_counts(paths.e2e_junit), "kept for failures": f"{kept} (in the Allure report)"}


def load_figures(paths: Paths) -> dict[str, str]:
    summary = perf_summary(paths)
    if summary is None:
        return {"run": "no summary.json written"}
    metrics = summary.get("metrics", {})
    figures = {}
    if "batches_completed" in metrics:
        figures["batches completed"] = f"{metrics['batches_completed']:.0f}"
    if "prompts_per_min" in metrics:
        figures["prompts/min"] = f"{metrics['prompts_per_min']:,.0f}"
    if "failure_ratio" in metrics:
        figures["failure ratio"] = f"{metrics['failure_ratio']:.4f}"
    if "host_other_cores" in metrics:
        figures["other processes' CPU"] = f"{metrics['host_other_cores']:.2f} cores"
    return figures


def gate_figures(paths: Paths) -> dict[str, str]:
    rows = gate_rows(paths)
    if not rows:
        return {}
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["result"]] = counts.get(row["result"], 0) + 1
    return {"checks": ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))}


def report_figures(paths: Paths) -> dict[str, str]:
    figures = {}
    if paths.allure_html.exists():
        figures["Allure"] = f"{paths.allure_html.stat().st_size / 1e6:.1f} MB single file"
    if (paths.perf_run / "index.html").exists():
        figures["performance report"] = "written"
    return figures


def perf_summary(paths: Paths) -> dict[str, Any] | None:
    path = paths.perf_run / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def gate_rows(paths: Paths) -> list[dict[str, Any]]:
    summary = perf_summary(paths)
    if summary is None:
        return []
    from utilities.reporting.load_gate_result import key_figures

    return key_figures(paths.perf_run)
