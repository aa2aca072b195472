"""``batchqa gate --rebaseline``: a baseline's distributions, calibration and effect-size floors from five or
more quiet runs, keeping their spread."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from utilities.perf.calibration import PARTS, Calibration, speed_factor
from utilities.perf.gate_rules import MIN_EFFECT_PCT, Baseline
from utilities.perf.gate_runs import RunData
from utilities.perf.gate_stats import Distribution, spread_floor

log = logging.getLogger(__name__)

MIN_RUNS = 5


class RebaselineError(ValueError):
    """Too few usable runs, or runs of another profile."""


def median_calibration(runs: Sequence[RunData]) -> Calibration | None:
    probes = [c for r in runs if (c := r.calibration) is not None]
    if not probes:
        return None
    return Calibration(**{part: statistics.median(getattr(p, part) for p in probes) for part in PARTS})


def rebaseline(template: Baseline, runs: Sequence[RunData]) -> tuple[Baseline, list[str]]:
    """``template``'s rules with new distributions: every usable run's samples (each divided by its own
    speed factor against the runs' median calibration where the rule normalises) pooled, each run's median
    kept, and the floor set from their spread (``spread_floor``). Runs on a busy machine are left out.
    Returns notes for the person rebaselining: what was left out, which floors are wide."""
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
        pooled, medians = [], []
        for run, speed in zip(quiet, speeds, strict=True):
            values = run.samples.get(rule.series)
            if values is None or not len(values):
                continue
            values = np.asarray(values, dtype=float) / (speed if rule.normalise else 1.0)
            pooled.append(values)
            medians.append(float(np.median(values)))
        if len(medians) < MIN_RUNS:
            notes.append(f"{rule.label}: samples in only {len(medians)} runs; its distribution is left as it was")
            rules.append(rule)
            continue
        floor = spread_floor(medians, minimum=MIN_EFFECT_PCT / 100) * 100
        distribution = Distribution.of(np.concatenate(pooled), medians)
        if floor > 2 * MIN_EFFECT_PCT:
            notes.append(f"{rule.label}: runs' medians spread widely, floor {floor:.0f} %")
        rules.append(replace(rule, distribution=distribution, min_effect_pct=floor))
    measured = {
        "runs": len(quiet),
        "at": [r.summary.get("at") for r in quiet],
        "rebaselined_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "other_cores": [round(r.other_cores or 0.0, 2) for r in quiet],
        "run_wait": [round(r.metrics.get("host_run_wait", 0.0), 2) for r in quiet],
        "speed_factors": [round(s, 3) for s in speeds],
        "machine": quiet[0].summary.get("machine"),
    }
    return replace(template, regression=tuple(rules), measured=measured, calibration=calibration), notes
