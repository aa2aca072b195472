"""What a run is held to: contract limits (always enforced) and regression rules (a statistic of the run's
per-request samples against the same statistic in each of the baseline's runs), and the check of one run
against both."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from utilities.paths import BASELINES_DIR
from utilities.perf.calibration import Calibration, speed_factor
from utilities.perf.gate_stats import (
    MIN_RUNS,
    MIN_SAMPLES,
    Comparison,
    Distribution,
    bonferroni,
    compare_run_set,
    statistic_name,
)

log = logging.getLogger(__name__)

BUSY_METRIC = "host_other_cores"
WAIT_METRIC = "host_run_wait"
FAMILY_ALPHA = 0.01
# How far a run's speed factor may be from 1 before the machine counts as another one: the same machine kind
# measured 0.45 a day after its baseline, while runs of one quiet hour stayed within 0.94-1.21.
MAX_SPEED_CHANGE = 1.5
MIN_EFFECT_PCT = 0.0

Better = Literal["lower", "higher"]
LimitStatus = Literal["pass", "fail", "missing", "skipped"]
RegressionStatus = Literal["pass", "regression", "inconclusive", "skipped"]


@dataclass(frozen=True, kw_only=True)
class ContractLimit:
    """A promise of the spec or the contract: ``limit`` is a ceiling (``better="lower"``) or a floor; a
    breach always fails, on a busy machine too."""

    name: str
    limit: float
    better: Better = "lower"
    required: bool = True
    unit: str = ""
    description: str = ""
    why: str = ""

    def __post_init__(self) -> None:
        if self.better not in ("lower", "higher"):
            raise ValueError(f"{self.name}: better must be 'lower' or 'higher', not {self.better!r}")

    def breached_by(self, value: float) -> bool:
        return value > self.limit if self.better == "lower" else value < self.limit

    @property
    def bound(self) -> str:
        return f"{'≤' if self.better == 'lower' else '≥'} {self.limit:g}{self.unit}"

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> ContractLimit:
        known = set(cls.__dataclass_fields__) - {"name"}
        if unknown := set(data) - known:
            raise ValueError(f"contract limit {name}: unknown keys {sorted(unknown)}")
        if "limit" not in data:
            raise ValueError(f"contract limit {name}: needs a limit")
        return cls(name=name, **data)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"limit": self.limit, "better": self.better}
        if not self.required:
            data["required"] = False
        data.update({k: v for k in ("unit", "description", "why") if (v := getattr(self, k))})
        return data


@dataclass(frozen=True, kw_only=True)
class RegressionRule:
    """A quantile of one series of samples (``series`` = Locust's ``TYPE name``, e.g. ``POST
    /api/v1/batch/upload``) against the same quantile in each of the baseline's runs.

    ``quantile``: 0.5 compares medians. A low quantile (0.1) reads the fast end of the series: a request
    that no neighbour delayed, so it moves least between runs, while a slowdown of the code path itself
    (an extra query, a slower parser) moves it as much as the median; the median also sees slowdowns that
    only show under contention.
    ``normalise``: divide the run's samples by the machine's speed factor (calibration probe) first — for
    latencies that scale with the machine; not for times dominated by the provider's sleeps.
    ``min_effect_pct``: the effect-size floor: a regression needs the interval's lower end above it.
    """

    name: str
    series: str
    label: str  # what the series is, e.g. "upload": lines read "upload p50 +31 % [+22 %, +40 %]: regression"
    unit: str = " ms"
    quantile: float = 0.5
    normalise: bool = True
    min_effect_pct: float = MIN_EFFECT_PCT
    description: str = ""
    why: str = ""
    distribution: Distribution | None = None

    @property
    def title(self) -> str:
        """``upload p10``: the series and the statistic judged."""
        return f"{self.label} {statistic_name(self.quantile)}"

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> RegressionRule:
        known = set(cls.__dataclass_fields__) - {"name"}
        if unknown := set(data) - known:
            raise ValueError(f"regression rule {name}: unknown keys {sorted(unknown)}")
        values = dict(data)
        if values.get("distribution") is not None:
            values["distribution"] = Distribution.from_dict(values["distribution"])
        return cls(name=name, **values)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"series": self.series, "label": self.label, "unit": self.unit}
        data |= {
            "quantile": self.quantile,
            "normalise": self.normalise,
            "min_effect_pct": round(self.min_effect_pct, 1),
        }
        data.update({k: v for k in ("description", "why") if (v := getattr(self, k))})
        if self.distribution is not None:
            data["distribution"] = self.distribution.as_dict()
        return data


@dataclass(frozen=True)
class Baseline:
    """A baseline file: the profile's contract limits and regression rules, the calibration of the machine
    the distributions were measured on, and when a machine counts as busy.

    The machine was busy for a run — its regressions inconclusive rather than failures, since a neighbour's
    job slows every request as much as a regression — when the run's threads waited for a CPU more than
    ``max_run_wait`` (seconds per second, ``host_run_wait``) or, for a baseline without that limit, when
    other processes used more than ``max_other_cores`` (``host_other_cores``).

    The run was on another machine when its speed factor (calibration probe) lies outside
    ``1 / max_speed_change`` .. ``max_speed_change``: rules that do not normalise (ratios to a reference,
    batch times) hold only on the baseline's machine, so there they are inconclusive; normalised rules
    are judged.
    """

    profile: str
    description: str
    contract: tuple[ContractLimit, ...]
    regression: tuple[RegressionRule, ...] = ()
    measured: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration | None = None
    max_other_cores: float | None = None
    contention: str = ""
    family_alpha: float = FAMILY_ALPHA
    max_run_wait: float | None = None
    max_speed_change: float = MAX_SPEED_CHANGE

    def other_machine(self, speed: float) -> bool:
        return not 1 / self.max_speed_change <= speed <= self.max_speed_change

    def busy(self, metrics: Mapping[str, float]) -> bool:
        wait, other = metrics.get(WAIT_METRIC), metrics.get(BUSY_METRIC)
        if self.max_run_wait is not None and wait is not None:
            return float(wait) > self.max_run_wait
        return self.max_other_cores is not None and other is not None and float(other) > self.max_other_cores

    def busy_limit(self) -> str:
        if self.max_run_wait is not None:
            return f"its threads may wait for a CPU {self.max_run_wait:g} s per second"
        return f"other processes may use {self.max_other_cores:g} cores"

    @classmethod
    def load(cls, path: Path) -> Baseline:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if "metrics" in data:
            raise ValueError(f"{path}: 'metrics' is the old layout; split it into 'contract' and 'regression'")
        busy = data.get("contention", {})
        calibration = data.get("calibration")
        return cls(
            data["profile"],
            data.get("description", ""),
            tuple(ContractLimit.from_dict(n, s) for n, s in data.get("contract", {}).items()),
            tuple(RegressionRule.from_dict(n, s) for n, s in data.get("regression", {}).items()),
            data.get("measured", {}),
            Calibration.from_dict(calibration) if calibration else None,
            busy.get("max_other_cores"),
            busy.get("why", ""),
            float(data.get("family_alpha", FAMILY_ALPHA)),
            busy.get("max_run_wait"),
            float(busy.get("max_speed_change", MAX_SPEED_CHANGE)),
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"profile": self.profile, "description": self.description, "measured": self.measured}
        if self.calibration is not None:
            data["calibration"] = self.calibration.as_dict()
        if self.max_other_cores is not None or self.max_run_wait is not None:
            limits = {
                "max_run_wait": self.max_run_wait,
                "max_other_cores": self.max_other_cores,
                "max_speed_change": self.max_speed_change,
            }
            data["contention"] = {k: v for k, v in limits.items() if v is not None} | {"why": self.contention}
        data["family_alpha"] = self.family_alpha
        data["contract"] = {rule.name: rule.as_dict() for rule in self.contract}
        data["regression"] = {rule.name: rule.as_dict() for rule in self.regression}
        return data

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def default_baseline(profile: str) -> Path:
    return BASELINES_DIR / f"{profile}.json"


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
