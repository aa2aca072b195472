"""``batchqa gate --rebaseline``: a baseline's distributions, calibration and each run's value of every
rule's statistic from five or more quiet runs, keeping their spread."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from utilities.perf.calibration import PARTS, Calibration, speed_factor
from utilities.perf.gate_rules import Baseline
from utilities.perf.gate_runs import RunData
from utilities.perf.gate_stats import MIN_RUNS, Distribution, run_statistic

log = logging.getLogger(__name__)

# A run whose own threads waited for a CPU more than this times the most any baseline run waited ran in
# conditions the baseline does not know: its regressions are inconclusive (``Baseline.busy``).
WAIT_MARGIN = 1.5
WIDE_SPREAD = 0.15  # σ of a rule's log value between runs; above it the rule cannot see a 25 % change


class RebaselineError(ValueError):
    """Too few usable runs, or runs of another profile."""


def median_calibration(runs: Sequence[RunData]) -> Calibration | None:
    probes = [c for r in runs if (c := r.calibration) is not None]
    if not probes:
        return None
    return Calibration(**{part: statistics.median(getattr(p, part) for p in probes) for part in PARTS})


def rebaseline(template: Baseline, runs: Sequence[RunData]) -> tuple[Baseline, list[str]]:
    """``template``'s rules with new distributions: every usable run's samples (each divided by its own
    speed factor against the runs' median calibration where the rule normalises) pooled, and each run's
    value of the rule's statistic kept: the gate compares a run with their spread. Runs on a busy machine
    are left out. Returns notes for the person rebaselining: what was left out, which rules spread widely."""
    notes = []
    wrong = [str(r.path) for r in runs if r.profile != template.profile]
    if wrong:
        raise RebaselineError(f"runs of another profile than {template.profile!r}: {wrong}")
    quiet = [r for r in runs if not template.busy(r.metrics)]
    for run in runs:
        if run not in quiet:
            notes.append(
                f"left out {run.path}: busy (other processes {run.other_cores or 0:.2f} cores, run waited "
                f"{run.metrics.get('host_run_wait', 0):.2f} s/s; {template.busy_limit()})"
            )
    if len(quiet) < MIN_RUNS:
        raise RebaselineError(f"{len(quiet)} quiet runs; a baseline needs at least {MIN_RUNS} to know its spread")
    calibration = median_calibration(quiet)
    speeds = [speed_factor(r.calibration, calibration) for r in quiet]
    rules = []
    for rule in template.regression:
        pooled, values_per_run = [], []
        for run, speed in zip(quiet, speeds, strict=True):
            values = run.samples.get(rule.series)
            if values is None or not len(values):
                continue
            values = np.asarray(values, dtype=float) / (speed if rule.normalise else 1.0)
            pooled.append(values)
            values_per_run.append(run_statistic(values, rule.quantile))
        if len(values_per_run) < MIN_RUNS:
            notes.append(f"{rule.title}: samples in only {len(values_per_run)} runs; left as it was")
            rules.append(rule)
            continue
        spread = float(np.std(np.log(values_per_run), ddof=1))
        if spread > WIDE_SPREAD:
            notes.append(
                f"{rule.title}: its runs' values spread widely (σ of log {spread:.2f}): only a large change "
                "can be told from that spread"
            )
        rules.append(replace(rule, distribution=Distribution.of(np.concatenate(pooled), values_per_run)))
    measured = {
        "runs": len(quiet),
        "at": [r.summary.get("at") for r in quiet],
        "rebaselined_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "other_cores": [round(r.other_cores or 0.0, 2) for r in quiet],
        "run_wait": [round(r.metrics.get("host_run_wait", 0.0), 2) for r in quiet],
        "speed_factors": [round(s, 3) for s in speeds],
        "machine": quiet[0].summary.get("machine"),
    }
    waits = [w for r in quiet if (w := r.metrics.get("host_run_wait")) is not None]
    max_run_wait = round(WAIT_MARGIN * max(waits), 2) if waits else template.max_run_wait
    updated = replace(
        template, regression=tuple(rules), measured=measured, calibration=calibration, max_run_wait=max_run_wait
    )
    return updated, notes
