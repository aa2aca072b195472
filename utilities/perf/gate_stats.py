"""The gate's statistics: the Hodges–Lehmann shift of a run's times against the baseline's with its
Mann–Whitney interval, tested against an effect-size floor at a Bonferroni-corrected level, and the
baseline distribution stored as n + quantiles."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

Verdict = Literal["regression", "no regression", "too few samples"]

QUANTILES = 101  # 0 %, 1 %, ..., 100 %: enough to redraw a sample of any size with its shape
MAX_BASELINE = 2000  # the baseline is redrawn at most this many points: the run's n limits the interval anyway
MIN_SAMPLES = 8  # fewer and the normal approximation of U, and any verdict, means little


@dataclass(frozen=True)
class Distribution:
    """A baseline metric as a distribution: ``n`` samples summarised by their quantiles (and each baseline
    run's median, which shows the run-to-run spread)."""

    n: int
    quantiles: tuple[float, ...]
    run_medians: tuple[float, ...] = ()

    @classmethod
    def of(cls, samples: Sequence[float], run_medians: Sequence[float] = ()) -> Distribution:
        values = np.asarray(samples, dtype=float)
        if values.size == 0:
            raise ValueError("a distribution needs at least one sample")
        points = np.quantile(values, np.linspace(0, 1, QUANTILES))
        return cls(int(values.size), tuple(round(float(q), 4) for q in points), tuple(run_medians))

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
        if self.run_medians:
            data["run_medians"] = [round(m, 4) for m in self.run_medians]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Distribution:
        quantiles = tuple(float(q) for q in data["quantiles"])
        if int(data["n"]) < 1 or len(quantiles) < 2 or list(quantiles) != sorted(quantiles):
            raise ValueError("a distribution needs n >= 1 and at least two ascending quantiles")
        return cls(int(data["n"]), quantiles, tuple(float(m) for m in data.get("run_medians", ())))


@dataclass(frozen=True)
class Comparison:
    """A run's times against the baseline's: ``shift`` > 1 is slower (the Hodges–Lehmann estimate of the
    ratio: the median of every run/baseline pair's ratio), with its ``level`` interval from inverting the
    Mann–Whitney U test; ``median_ratio`` is the plain ratio of the two medians, shown beside it.

    ``regression`` when the interval's lower end is above ``1 + floor``: the one-sided Mann–Whitney test
    of "slower by at most the floor" rejects at ``alpha``. So a tiny shift on a big sample is no
    regression, and neither is a shift within the run-to-run spread (the floor).
    """

    shift: float
    low: float
    high: float
    median_ratio: float
    level: float
    floor: float
    n_run: int
    n_baseline: int

    @property
    def verdict(self) -> Verdict:
        if min(self.n_run, self.n_baseline) < MIN_SAMPLES:
            return "too few samples"
        return "regression" if self.low > 1 + self.floor else "no regression"

    @property
    def change_pct(self) -> float:
        return (self.shift - 1) * 100

    @property
    def median_change_pct(self) -> float:
        return (self.median_ratio - 1) * 100

    def interval_pct(self) -> tuple[float, float]:
        return (self.low - 1) * 100, (self.high - 1) * 100

    def describe(self) -> str:
        low, high = self.interval_pct()
        return f"{self.change_pct:+.0f} % [{low:+.0f} %, {high:+.0f} %]"


def compare_shift(
    run: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    *,
    alpha: float,
    floor: float = 0.0,
) -> Comparison:
    """Hodges–Lehmann shift of log(run) against log(baseline), with the distribution-free interval whose
    ends are the order statistics of the n·m pairwise differences that the Mann–Whitney U test at
    ``alpha`` (one-sided, normal approximation) puts there (Moses' interval), back on the ratio scale."""
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), not {alpha}")
    if floor < 0:
        raise ValueError(f"the effect-size floor cannot be negative ({floor})")
    a, b = np.asarray(run, dtype=float), np.asarray(baseline, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples need at least one value")
    if np.any(a <= 0) or np.any(b <= 0):
        raise ValueError("times must be positive to compare them as ratios")
    median_ratio = float(np.median(a) / np.median(b))
    differences = (np.log(a)[:, None] - np.log(b)[None, :]).ravel()
    n, m, total = a.size, b.size, differences.size
    z = NormalDist().inv_cdf(1 - alpha)
    k = math.floor(total / 2 - z * math.sqrt(n * m * (n + m + 1) / 12))
    k = min(max(k, 0), total - 1)
    picks = sorted({k, total - 1 - k, (total - 1) // 2, total // 2})
    ordered = np.partition(differences, picks)
    centre = (ordered[(total - 1) // 2] + ordered[total // 2]) / 2
    low, high = ordered[k], ordered[total - 1 - k]
    level = 1 - 2 * alpha
    return Comparison(float(np.exp(centre)), float(np.exp(low)), float(np.exp(high)), median_ratio, level, floor, n, m)


def bonferroni(family_alpha: float, tests: int) -> float:
    """Per-test level so that the chance of any false alarm among ``tests`` tests is at most ``family_alpha``."""
    if not 0 < family_alpha < 1:
        raise ValueError(f"the false-alarm rate must be in (0, 1), not {family_alpha}")
    return family_alpha / max(1, tests)


def spread_floor(run_medians: Sequence[float], *, minimum: float, margin: float = 1.5) -> float:
    """The effect-size floor a baseline's runs justify: ``margin`` times the largest relative distance of
    one run's median from the median of the runs, and at least ``minimum``.

    A single run's median moves with the machine's state as well as with sampling; the interval sees only
    the sampling, so the floor has to cover what moved between the baseline's own runs.
    """
    medians = np.asarray([m for m in run_medians if m > 0], dtype=float)
    if medians.size < 2:
        return minimum
    centre = float(np.median(medians))
    widest = float(np.max(np.abs(medians / centre - 1)))
    return max(minimum, margin * widest)
