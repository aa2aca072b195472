"""The gate's history (``history.jsonl``, one line per gated run) and the rolling baseline built from it.

A fixed baseline is a photograph of the machine on the day it was taken. A shared machine drifts: on this
kit's own 2-core machine, unchanged code's socket lag median rose 30 % and its batch times 25 % within one
hour, unseen by the calibration probe. A baseline wide enough to span that drift loses the power to see a
25 % regression; a narrow one raises false alarms when the machine moves. The rolling baseline judges each
run against the previous ``window`` clean runs of the same profile, the same target and the same baseline
file instead: the spread it sees is the spread of the runner *now*.

A run counts as clean when it was gated with no fault switched on and its verdict was a plain pass (not
inconclusive, not failed); a regression therefore never joins the window that judges the next run. What a
rolling window cannot see is a slow creep of small regressions, each inside the spread; ``batchqa trend``
(change points over the whole history) is the check for that.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from utilities.perf.gate_rules import BUSY_METRIC, WAIT_METRIC, Baseline
from utilities.perf.gate_runs import RunData
from utilities.perf.gate_stats import MIN_RUNS, Distribution
from utilities.perf.gate_verdicts import GateReport

log = logging.getLogger(__name__)

DEFAULT_HISTORY = Path("reports/perf/history.jsonl")


def read_history(path: Path) -> list[dict[str, Any]]:
    """Every entry of a history file, oldest first; a line that is not JSON is skipped with a warning."""
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s:%d is not JSON; skipped", path, number)
    return entries


def append_history(path: Path, entry: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")


def baseline_id(baseline: Baseline) -> str:
    """What makes two runs' rule values comparable: the same calibration reference (the values are
    normalised by it) and the same rules (series, quantile, normalisation)."""
    basis = {
        "profile": baseline.profile,
        "calibration": baseline.calibration.as_dict() if baseline.calibration else None,
        "rules": {r.name: [r.series, r.quantile, r.normalise] for r in baseline.regression},
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


def history_entry(run: RunData, report: GateReport, index: int = 0) -> dict[str, Any]:
    """What ``batchqa trend`` and the rolling baseline read: the contract metrics, each regression rule's
    (normalised) statistic and change, the verdicts, the machine's state, the baseline it was judged by.
    ``index``: which of the report's judged runs ``run`` is (a verdict on K runs records K entries, each with
    its own values and the shared verdict, so a window holds single runs)."""
    rules = {}
    for check in report.regressions:
        if (comparison := check.comparison) is not None:
            values = comparison.run_values or (comparison.run_value,)
            value = values[min(index, len(values) - 1)]
            rules[check.rule.name] = {
                "statistic": comparison.statistic,
                "value": round(value, 4),
                "change_pct": round((value / comparison.baseline_value - 1) * 100, 2),
                "status": check.status,
            }
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_at": run.summary.get("at"),
        "profile": run.profile,
        "target": run.summary.get("target"),
        "faults": run.summary.get("faults", ""),
        "run": str(run.path),
        "baseline_id": baseline_id(report.baseline),
        "passed": report.ok,
        "verdict": report.verdict,
        "busy": report.busy,
        "other_machine": report.other_machine,
        "speed_factor": round(report.speed, 4),
        "judged_runs": report.runs,
        "metrics": {c.rule.name: float(run.metrics[c.rule.name]) for c in report.limits if c.rule.name in run.metrics}
        | {k: run.metrics[k] for k in (BUSY_METRIC, WAIT_METRIC, "prompts_per_min", "http_rps") if k in run.metrics},
        "rules": rules,
    }


def clean_entries(
    entries: Sequence[Mapping[str, Any]], baseline: Baseline, *, target: str | None = None
) -> list[Mapping[str, Any]]:
    """The entries a rolling window may hold: same profile, target and baseline, no fault, a plain pass."""
    wanted = baseline_id(baseline)
    return [
        e
        for e in entries
        if e.get("profile") == baseline.profile
        and e.get("baseline_id") == wanted
        and not e.get("faults")
        and e.get("verdict") == "pass"
        and (target is None or e.get("target") == target)
    ]


def rolling_baseline(
    baseline: Baseline, entries: Sequence[Mapping[str, Any]], window: int, *, target: str | None = None
) -> tuple[Baseline, list[str]]:
    """``baseline`` with each regression rule's run values replaced by its values in the last ``window``
    clean runs of ``entries``; a rule with fewer than ``MIN_RUNS`` such values keeps the committed ones.
    Returns the baseline and one note per rule saying which values it judges against."""
    if window < MIN_RUNS:
        raise ValueError(f"a rolling window needs at least {MIN_RUNS} runs, not {window}")
    clean = clean_entries(entries, baseline, target=target)
    rules, notes = [], []
    for rule in baseline.regression:
        values = [e["rules"][rule.name]["value"] for e in clean if rule.name in e.get("rules", {})][-window:]
        if len(values) < MIN_RUNS:
            notes.append(
                f"{rule.title}: {len(values)} clean runs in the history, fewer than {MIN_RUNS}: the file's runs"
            )
            rules.append(rule)
            continue
        if rule.distribution is None:  # a rule the file has no runs for yet: the window's values stand alone
            rolled = Distribution.of(values, values)
        else:
            rolled = Distribution(rule.distribution.n, rule.distribution.quantiles, tuple(float(v) for v in values))
        rules.append(replace(rule, distribution=rolled))
        notes.append(f"{rule.title}: the last {len(values)} clean runs in the history")
    return replace(baseline, regression=tuple(rules)), notes


def rolling_option(help_text: str) -> Any:
    """``--rolling N`` (0: the baseline file's runs), for ``batchqa gate`` and ``batchqa gate-audit``."""
    return click.option("--rolling", "window", type=click.IntRange(min=0), default=0, show_default=True, help=help_text)
