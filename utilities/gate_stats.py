"""The gate's statistics: a bootstrap confidence interval of the ratio of two medians, tested against an
effect-size floor at a Bonferroni-corrected level, and the baseline distribution stored as n + quantiles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Verdict = Literal["regression", "no regression", "too few samples"]

QUANTILES = 101  # 0 %, 1 %, ..., 100 %: enough to redraw a sample of any size with its shape
BOOTSTRAP = 10_000  # the 0.1 % quantile of the resampled ratios is then the 10th smallest, not a lone extreme
CHUNK_VALUES = 2_000_000  # resampled values held at once (16 MB)
MIN_SAMPLES = 8  # fewer and the bootstrap of a median has too few distinct values to mean anything
SEED = 20261204  # a fixed seed: the same two samples always get the same verdict


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
        """``n`` values redrawn from the quantile function at evenly spaced ranks (deterministic)."""
        ranks = (np.arange(self.n) + 0.5) / self.n
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
    """A run's median against the baseline's: ``ratio`` > 1 is slower, with a ``level`` confidence interval.

    ``regression`` when the interval's lower end is above ``1 + floor``: the run is slower by more than
    the floor with the stated confidence, so a tiny shift on a big sample is no regression, and a shift
    within the run-to-run spread (the floor) is not one either.
    """

    ratio: float
    low: float
    high: float
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
        return (self.ratio - 1) * 100

    def interval_pct(self) -> tuple[float, float]:
        return (self.low - 1) * 100, (self.high - 1) * 100

    def describe(self) -> str:
        low, high = self.interval_pct()
        return f"{self.change_pct:+.0f} % [{low:+.0f} %, {high:+.0f} %]"


def bootstrap_medians(values: np.ndarray, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """The median of ``rounds`` resamples (with replacement) of ``values``, a chunk of rounds at a time."""
    per_chunk = max(1, CHUNK_VALUES // values.size)
    medians = []
    for start in range(0, rounds, per_chunk):
        picks = rng.integers(0, values.size, size=(min(per_chunk, rounds - start), values.size))
        medians.append(np.median(values[picks], axis=1))
    return np.concatenate(medians)


def compare_medians(
    run: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    *,
    alpha: float,
    floor: float = 0.0,
    rounds: int = BOOTSTRAP,
    seed: int = SEED,
) -> Comparison:
    """Bootstrap percentile interval of median(run) / median(baseline) at level 1 - 2·alpha, so that its
    lower end is a one-sided test at ``alpha`` of "slower by more than ``floor``"."""
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), not {alpha}")
    if floor < 0:
        raise ValueError(f"the effect-size floor cannot be negative ({floor})")
    a, b = np.asarray(run, dtype=float), np.asarray(baseline, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples need at least one value")
    base_median = float(np.median(b))
    if base_median <= 0:
        raise ValueError("the baseline median must be positive to compare ratios")
    ratio = float(np.median(a)) / base_median
    rng = np.random.default_rng(seed)
    ratios = bootstrap_medians(a, rounds, rng) / np.maximum(bootstrap_medians(b, rounds, rng), 1e-12)
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    return Comparison(ratio, float(low), float(high), 1 - 2 * alpha, floor, int(a.size), int(b.size))


def bonferroni(family_alpha: float, tests: int) -> float:
    """Per-test level so that the chance of any false alarm among ``tests`` tests is at most ``family_alpha``."""
    if not 0 < family_alpha < 1:
        raise ValueError(f"the false-alarm rate must be in (0, 1), not {family_alpha}")
    return family_alpha / max(1, tests)


def spread_floor(run_medians: Sequence[float], *, minimum: float, margin: float = 1.5) -> float:
    """The effect-size floor a baseline's runs justify: ``margin`` times the largest relative distance of
    one run's median from the median of the runs, and at least ``minimum``.

    A single run's median moves with the machine's state as well as with sampling; the bootstrap sees only
    the sampling, so the floor has to cover what moved between the baseline's own runs.
    """
    medians = np.asarray([m for m in run_medians if m > 0], dtype=float)
    if medians.size < 2:
        return minimum
    centre = float(np.median(medians))
    widest = float(np.max(np.abs(medians / centre - 1)))
    return max(minimum, margin * widest)
