"""The gate's statistics: one run's value of a statistic (a quantile of its per-request times) against the
same statistic in each of the baseline's runs, with a Student-t prediction interval at a
Bonferroni-corrected level, and the baseline's pooled samples stored as n + quantiles.

Why runs, not requests, are the unit: requests of one run share the machine's state and the interleaving
of the load, so a run's median moves between runs of the same code far more than its sampling error says
(on an idle 2-core machine, ±18 % for the 50-prompt upload's median over ten 20-second smoke runs). A test
that treats every request as independent (Mann–Whitney over the samples) then calls that movement a
regression. Comparing one value per run with the spread of the baseline's runs' values counts it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import t as student_t

Verdict = Literal["regression", "no regression", "too few samples"]

QUANTILES = 101  # 0 %, 1 %, ..., 100 %: enough to redraw a sample of any size with its shape
MAX_BASELINE = 2000  # the baseline is redrawn at most this many points (plots and reports)
MIN_SAMPLES = 8  # fewer requests in a run and its quantile means little
MIN_RUNS = 5  # fewer baseline runs and their spread is a guess


@dataclass(frozen=True)
class Distribution:
    """A baseline series: ``n`` pooled samples summarised by their quantiles, and ``run_values``: each
    baseline run's value of the rule's statistic (what a run is compared with)."""

    n: int
    quantiles: tuple[float, ...]
    run_values: tuple[float, ...] = ()

    @classmethod
    def of(cls, samples: Sequence[float], run_values: Sequence[float] = ()) -> Distribution:
        values = np.asarray(samples, dtype=float)
        if values.size == 0:
            raise ValueError("a distribution needs at least one sample")
        points = np.quantile(values, np.linspace(0, 1, QUANTILES))
        return cls(
            int(values.size), tuple(round(float(q), 4) for q in points), tuple(round(float(v), 4) for v in run_values)
        )

    @property
    def median(self) -> float:
        return self.quantiles[len(self.quantiles) // 2]

    def sample(self) -> np.ndarray:
        """``n`` values (at most ``MAX_BASELINE``) redrawn from the quantile function at evenly spaced ranks
        (deterministic)."""
        size = min(self.n, MAX_BASELINE)
        ranks = (np.arange(size) + 0.5) / size
        return np.interp(ranks, np.linspace(0, 1, len(self.quantiles)), self.quantiles)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"n": self.n, "quantiles": list(self.quantiles)}
        if self.run_values:
            data["run_values"] = [round(m, 4) for m in self.run_values]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Distribution:
        quantiles = tuple(float(q) for q in data["quantiles"])
        if int(data["n"]) < 1 or len(quantiles) < 2 or list(quantiles) != sorted(quantiles):
            raise ValueError("a distribution needs n >= 1 and at least two ascending quantiles")
        return cls(int(data["n"]), quantiles, tuple(float(m) for m in data.get("run_values", ())))


def statistic_name(quantile: float) -> str:
    """``p10`` for 0.1, ``p50`` for 0.5."""
    return f"p{quantile * 100:g}"


def run_statistic(values: Sequence[float] | np.ndarray, quantile: float) -> float:
    """The rule's statistic of one run's samples (linear interpolation between order statistics)."""
    if not 0 < quantile < 1:
        raise ValueError(f"the quantile must be in (0, 1), not {quantile}")
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("a run's statistic needs at least one sample")
    return float(np.quantile(array, quantile))


@dataclass(frozen=True)
class Comparison:
    """The judged runs' statistic against the baseline runs': ``ratio`` > 1 is slower (the geometric mean of the
    judged runs' values / the geometric mean of the baseline runs' values) with its ``level`` prediction interval
    ``low``..``high``. ``run_values`` holds each judged run's value: one for a single run, K for a verdict on K
    runs (``batchqa load --repeat K``).

    ``regression`` when ``low`` > 1 + ``floor``: judged runs of unchanged code land above that with probability
    at most ``alpha`` (one-sided), if a run's log value varies between runs as in the baseline's runs.
    """

    statistic: str
    run_value: float
    baseline_value: float
    low: float
    high: float
    level: float
    floor: float
    n_run: int
    runs: int
    run_values: tuple[float, ...] = ()

    @property
    def judged(self) -> int:
        """How many runs the verdict is on."""
        return max(1, len(self.run_values))

    @property
    def ratio(self) -> float:
        return self.run_value / self.baseline_value

    @property
    def verdict(self) -> Verdict:
        if self.n_run < MIN_SAMPLES or self.runs < MIN_RUNS:
            return "too few samples"
        return "regression" if self.low > 1 + self.floor else "no regression"

    @property
    def change_pct(self) -> float:
        return (self.ratio - 1) * 100

    def interval_pct(self) -> tuple[float, float]:
        return (self.low - 1) * 100, (self.high - 1) * 100

    def describe(self) -> str:
        """``+31 % [+22 %, +40 %]``; ``... over 4 runs`` for a set."""
        low, high = self.interval_pct()
        runs = f" over {self.judged} runs" if self.judged > 1 else ""
        return f"{self.change_pct:+.0f} % [{low:+.0f} %, {high:+.0f} %]{runs}"


def compare_runs(
    run: Sequence[float] | np.ndarray,
    baseline_runs: Sequence[float],
    *,
    quantile: float,
    alpha: float,
    floor: float = 0.0,
) -> Comparison:
    """One run's samples against ``baseline_runs`` (each baseline run's value of the same quantile):
    ``compare_run_set`` with a set of one."""
    return compare_run_set([run], baseline_runs, quantile=quantile, alpha=alpha, floor=floor)


def compare_run_set(
    runs: Sequence[Sequence[float] | np.ndarray],
    baseline_runs: Sequence[float],
    *,
    quantile: float,
    alpha: float,
    floor: float = 0.0,
) -> Comparison:
    """The ``quantile`` of each of K judged ``runs`` (their samples) against ``baseline_runs`` (each baseline
    run's value of the same quantile), on the log scale: the shift r = mean(log judged values) − mean(log
    baseline values) and its prediction half-width h = t(1 − alpha, k − 1) · s · √(1/K + 1/k) for k baseline
    runs with standard deviation s. The interval is exp(r ± h).

    √(1/K + 1/k): the mean of K new runs varies 1/√K as much as one run, if runs vary independently around
    the level the baseline runs share (a window of recent runs, ``--rolling``, keeps that level current)."""
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), not {alpha}")
    if floor < 0:
        raise ValueError(f"the effect-size floor cannot be negative ({floor})")
    if not runs:
        raise ValueError("judge at least one run")
    sets = [np.asarray(run, dtype=float) for run in runs]
    values = np.asarray(baseline_runs, dtype=float)
    if any(samples.size == 0 for samples in sets):
        raise ValueError("each run needs at least one sample")
    if any(np.any(samples <= 0) for samples in sets) or np.any(values <= 0):
        raise ValueError("times must be positive to compare them as ratios")
    judged = [run_statistic(samples, quantile) for samples in sets]
    value = math.exp(float(np.mean(np.log(judged))))
    logs = np.log(values)
    k = int(values.size)
    centre = float(np.mean(logs)) if k else math.log(value)
    if k >= 2:
        spread = float(np.std(logs, ddof=1)) * math.sqrt(1 / len(judged) + 1 / k)
        half = float(student_t.ppf(1 - alpha, k - 1)) * spread
    else:
        half = math.inf
    shift = math.log(value) - centre
    return Comparison(
        statistic_name(quantile),
        value,
        math.exp(centre),
        math.exp(shift - half),
        math.exp(shift + half) if math.isfinite(half) else math.inf,
        1 - 2 * alpha,
        floor,
        min(int(samples.size) for samples in sets),
        k,
        tuple(judged),
    )


def bonferroni(family_alpha: float, tests: int) -> float:
    """Per-test level so that the chance of any false alarm among ``tests`` tests is at most ``family_alpha``."""
    if not 0 < family_alpha < 1:
        raise ValueError(f"the false-alarm rate must be in (0, 1), not {family_alpha}")
    return family_alpha / max(1, tests)
