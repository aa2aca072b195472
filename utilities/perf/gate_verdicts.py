"""The check of a run, or of a set of runs, against a baseline: each contract limit's value and each
regression rule's comparison with its verdict, and the report that gathers them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from utilities.perf.calibration import Calibration, speed_factor
from utilities.perf.gate_rules import BUSY_METRIC, FAMILY_ALPHA, WAIT_METRIC, Baseline, ContractLimit, RegressionRule
from utilities.perf.gate_stats import MIN_RUNS, MIN_SAMPLES, Comparison, bonferroni, compare_run_set

LimitStatus = Literal["pass", "fail", "missing", "skipped"]
RegressionStatus = Literal["pass", "regression", "inconclusive", "skipped"]


@dataclass(frozen=True)
class LimitCheck:
    rule: ContractLimit
    value: float | None
    status: LimitStatus

    def problem(self) -> str | None:
        if self.status == "missing":
            return f"{self.rule.name}: not measured in this run (required)"
        if self.status == "fail" and self.value is not None:
            return f"{self.rule.name} = {self.value:g}{self.rule.unit}, contract limit {self.rule.bound}"
        return None


@dataclass(frozen=True)
class RegressionCheck:
    rule: RegressionRule
    comparison: Comparison | None
    status: RegressionStatus
    note: str = ""

    def line(self) -> str:
        """``upload p10 +31 % [+22 %, +40 %]: regression``."""
        if self.comparison is None:
            return f"{self.rule.title}: {self.status} ({self.note})"
        word = {"pass": "no regression"}.get(self.status, self.status)
        return f"{self.rule.label} {self.comparison.statistic} {self.comparison.describe()}: {word}"

    def problem(self) -> str | None:
        if self.status != "regression" or self.comparison is None:
            return None
        return (
            f"{self.line()} — slower than the baseline's {self.comparison.runs} runs by more than "
            f"{self.comparison.floor * 100:.0f} % at {self.comparison.level:.2%} confidence"
        )


@dataclass
class GateReport:
    """Every check; ``problems()`` is empty when no contract limit is breached and no regression shown."""

    baseline: Baseline
    limits: list[LimitCheck]
    regressions: list[RegressionCheck]
    other_cores: float | None = None
    run_wait: float | None = None
    speed: float = 1.0
    alpha: float = FAMILY_ALPHA
    strict: bool = False
    runs: int = 1  # how many runs the verdict is on (``batchqa load --repeat K``)

    @property
    def busy(self) -> bool:
        """Contention during the run was more than the baseline allows for (see ``Baseline``)."""
        metrics = {BUSY_METRIC: self.other_cores, WAIT_METRIC: self.run_wait}
        return self.baseline.busy({k: v for k, v in metrics.items() if v is not None})

    @property
    def other_machine(self) -> bool:
        """The calibration probe says this machine runs at another speed than the baseline's (see ``Baseline``)."""
        return self.baseline.other_machine(self.speed)

    def inconclusive(self) -> list[RegressionCheck]:
        return [c for c in self.regressions if c.status == "inconclusive"]

    def problems(self) -> list[str]:
        return [p for c in [*self.limits, *self.regressions] if (p := c.problem())]

    @property
    def ok(self) -> bool:
        return not self.problems()

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "fail"
        return "inconclusive" if self.inconclusive() else "pass"


@dataclass(frozen=True)
class RunInput:
    """What the gate reads of one run: its flat metrics, its samples by series, its calibration probe."""

    metrics: Mapping[str, float]
    samples: Mapping[str, np.ndarray] = field(default_factory=dict)
    calibration: Calibration | None = None


def check_limits(metrics: Mapping[str, float], rules: tuple[ContractLimit, ...]) -> list[LimitCheck]:
    return check_limits_of([metrics], rules)


def check_limits_of(runs: Sequence[Mapping[str, float]], rules: tuple[ContractLimit, ...]) -> list[LimitCheck]:
    """Each contract limit against the worst of ``runs`` (every run must keep every promise); missing when a
    run lacks the metric."""
    checks = []
    for rule in rules:
        values = [m.get(rule.name) for m in runs]
        if not values or any(v is None for v in values):
            checks.append(LimitCheck(rule, None, "missing" if rule.required else "skipped"))
            continue
        worst = (max if rule.better == "lower" else min)(float(v) for v in values if v is not None)
        checks.append(LimitCheck(rule, worst, "fail" if rule.breached_by(worst) else "pass"))
    return checks


def evaluate(
    metrics: Mapping[str, float],
    baseline: Baseline,
    *,
    samples: Mapping[str, np.ndarray] | None = None,
    calibration: Calibration | None = None,
    strict: bool = False,
    min_effect_pct: float | None = None,
) -> GateReport:
    """One run: ``evaluate_runs`` with a set of one."""
    run = RunInput(metrics, samples or {}, calibration)
    return evaluate_runs([run], baseline, strict=strict, min_effect_pct=min_effect_pct)


def evaluate_runs(
    runs: Sequence[RunInput],
    baseline: Baseline,
    *,
    strict: bool = False,
    min_effect_pct: float | None = None,
) -> GateReport:
    """Contract limits on every run's metrics; each regression rule's statistic of each run's samples (divided
    by that run's speed factor where the rule normalises), their geometric mean against the baseline runs'
    values at ``family_alpha / rules`` (Bonferroni), with the rule's floor raised to ``min_effect_pct`` when
    given. The machine counts as busy (see ``Baseline``) when it was busy for any of the runs; then a
    regression is inconclusive unless ``strict``."""
    if not runs:
        raise ValueError("the gate needs at least one run")
    others = [float(v) for r in runs if (v := r.metrics.get(BUSY_METRIC)) is not None]
    waits = [float(v) for r in runs if (v := r.metrics.get(WAIT_METRIC)) is not None]
    speeds = [speed_factor(r.calibration, baseline.calibration) for r in runs]
    judged = [r for r in baseline.regression if _judgeable(r)]
    report = GateReport(
        baseline,
        check_limits_of([r.metrics for r in runs], baseline.contract),
        [],
        max(others) if others else None,
        max(waits) if waits else None,
        math.exp(sum(math.log(s) for s in speeds) / len(speeds)),
        bonferroni(baseline.family_alpha, len(judged)),
        strict,
        len(runs),
    )
    for rule in baseline.regression:
        sets = [
            None
            if (values := r.samples.get(rule.series)) is None
            else np.asarray(values, dtype=float) / (speed if rule.normalise else 1.0)
            for r, speed in zip(runs, speeds, strict=True)
        ]
        report.regressions.append(_check_regression(rule, sets, report, min_effect_pct))
    return report


def _check_regression(
    rule: RegressionRule, sets: list[np.ndarray | None], report: GateReport, min_effect_pct: float | None
) -> RegressionCheck:
    if rule.distribution is None or not _judgeable(rule):
        runs = 0 if rule.distribution is None else len(rule.distribution.run_values)
        note = f"the baseline holds {runs} runs, fewer than {MIN_RUNS}: run batchqa gate --rebaseline"
        return RegressionCheck(rule, None, "skipped", note)
    usable = [values for values in sets if values is not None and len(values) >= MIN_SAMPLES]
    if len(usable) < len(sets):
        counts = ", ".join(str(0 if v is None else len(v)) for v in sets)
        return RegressionCheck(rule, None, "skipped", f"{counts} samples in the run(s), fewer than {MIN_SAMPLES}")
    floor = max(rule.min_effect_pct, min_effect_pct or 0.0) / 100
    comparison = compare_run_set(
        usable, rule.distribution.run_values, quantile=rule.quantile, alpha=report.alpha, floor=floor
    )
    if comparison.verdict == "too few samples":
        return RegressionCheck(rule, comparison, "skipped", "too few samples")
    if comparison.verdict == "no regression":
        return RegressionCheck(rule, comparison, "pass")
    if report.busy and not report.strict:
        return RegressionCheck(rule, comparison, "inconclusive", "busy machine")
    if report.other_machine and not rule.normalise and not report.strict:
        return RegressionCheck(rule, comparison, "inconclusive", f"another machine (speed ×{report.speed:.2f})")
    return RegressionCheck(rule, comparison, "regression")


def _judgeable(rule: RegressionRule) -> bool:
    return rule.distribution is not None and len(rule.distribution.run_values) >= MIN_RUNS
