"""What a run is held to: contract limits (always enforced) and regression rules (a statistic of the run's
per-request samples against the same statistic in each of the baseline's runs), kept in a baseline file.
Judging runs against them is ``gate_verdicts``."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from utilities.paths import BASELINES_DIR
from utilities.perf.calibration import Calibration
from utilities.perf.gate_stats import (
    Distribution,
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
    ``max_run_wait`` (seconds per second, ``host_run_wait``), or when other processes used more than
    ``max_other_cores`` (``host_other_cores``). Either alone: a run that got its CPU when it asked (little
    wait) is still woken late while a neighbour keeps the other core busy, and a socket's lag, a wake-up
    measured in milliseconds, shows it first.

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
        waited = self.max_run_wait is not None and wait is not None and float(wait) > self.max_run_wait
        crowded = self.max_other_cores is not None and other is not None and float(other) > self.max_other_cores
        return waited or crowded

    def busy_limit(self) -> str:
        limits = []
        if self.max_run_wait is not None:
            limits.append(f"its threads may wait for a CPU {self.max_run_wait:g} s per second")
        if self.max_other_cores is not None:
            limits.append(f"other processes may use {self.max_other_cores:g} cores")
        return " and ".join(limits) or "no limit"

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
