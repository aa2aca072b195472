"""The gate's statistics on seeded synthetic runs: the false-alarm rate holds at α when runs differ from
each other more than their sampling says, shifts are detected with their interval, the fast end sees a
constant added delay that the median's spread hides, the Bonferroni correction and the stored
distribution. No timing involved."""

from __future__ import annotations

import numpy as np
import pytest

from utilities.perf.gate_stats import Distribution, bonferroni, compare_runs, run_statistic

pytestmark = pytest.mark.area("Performance tooling")
RUN_SPREAD = 0.15  # σ of log of a run's level between runs of the same code


def _run(rng: np.random.Generator, n: int = 80, scale: float = 1.0) -> np.ndarray:
    """One run's request times: a 20 ms median that moves between runs (the machine's state, the load's
    interleaving), and a long right tail within the run."""
    level = np.exp(rng.normal(0.0, RUN_SPREAD))
    return 20.0 * scale * level * rng.lognormal(0.0, 0.4, n)


def _baseline_values(rng: np.random.Generator, runs: int = 10, quantile: float = 0.5) -> list[float]:
    return [run_statistic(_run(rng), quantile) for _ in range(runs)]


def test_unchanged_code_is_called_a_regression_about_alpha_of_the_time_though_runs_differ() -> None:
    rng = np.random.default_rng(1)
    trials, alpha = 400, 0.05

    rejections = sum(
        compare_runs(_run(rng), _baseline_values(rng), quantile=0.5, alpha=alpha).verdict == "regression"
        for _ in range(trials)
    )

    # Binomial(400, 0.05): mean 20, sd 4.4. A per-request test (Mann–Whitney over the samples) calls most
    # of these runs regressions, since a run's level moves ±15 % and 80 samples pin a median to ±5 %.
    assert 8 <= rejections <= 34, rejections


def test_bonferroni_keeps_the_whole_gate_under_its_false_alarm_rate() -> None:
    rng = np.random.default_rng(2)
    rules, trials = 8, 300
    alpha = bonferroni(0.01, rules)
    baselines = [_baseline_values(rng) for _ in range(rules)]

    gates_failed = sum(
        any(compare_runs(_run(rng), b, quantile=0.5, alpha=alpha).verdict == "regression" for b in baselines)
        for _ in range(trials)
    )

    assert alpha == pytest.approx(0.01 / 8)
    assert gates_failed <= 9, f"{gates_failed} of {trials} gates failed on unchanged code"


def test_a_doubling_is_detected_with_its_interval() -> None:
    rng = np.random.default_rng(3)

    result = compare_runs(_run(rng, 300, 2.0), _baseline_values(rng), quantile=0.5, alpha=0.001)

    assert result.verdict == "regression"
    assert 1.0 < result.low < result.ratio < result.high
    assert result.ratio > 1.5
    assert result.statistic == "p50" and result.runs == 10
    assert result.describe().startswith("+")


def test_the_fast_end_sees_a_constant_delay_that_the_medians_spread_hides() -> None:
    """Requests that no neighbour delayed take the path's own 6 ms; contention adds an exponential wait
    whose mean moves a lot between runs. A 5 ms cost added to the path moves the median by about a
    quarter, within its spread, and the 10th percentile by more than half, far outside its spread."""

    def run(rng: np.random.Generator, delay: float = 0.0) -> np.ndarray:
        contention = 14.0 * np.exp(rng.normal(0.0, 0.3))
        return 6.0 + delay + rng.exponential(contention, 90) * (rng.random(90) < 0.8)

    rng = np.random.default_rng(4)
    baseline = [run(rng) for _ in range(10)]
    alpha = bonferroni(0.01, 8)
    detected = {0.1: 0, 0.5: 0}
    for _ in range(40):
        slower = run(rng, delay=5.0)
        for q in detected:
            values = [run_statistic(b, q) for b in baseline]
            detected[q] += compare_runs(slower, values, quantile=q, alpha=alpha).verdict == "regression"

    assert detected[0.1] >= 36, detected
    assert detected[0.5] <= 8, detected


def test_faster_runs_are_never_regressions() -> None:
    rng = np.random.default_rng(5)

    result = compare_runs(_run(rng, 300, 0.5), _baseline_values(rng), quantile=0.5, alpha=0.01)

    assert result.verdict == "no regression" and result.change_pct < -25


def test_the_floor_raises_what_counts_as_a_regression() -> None:
    rng = np.random.default_rng(6)
    baseline, run = _baseline_values(rng), _run(rng, 300, 2.0)

    plain = compare_runs(run, baseline, quantile=0.5, alpha=0.01)
    floored = compare_runs(run, baseline, quantile=0.5, alpha=0.01, floor=2.0)

    assert plain.verdict == "regression" and floored.verdict == "no regression"


def test_too_few_samples_or_baseline_runs_get_no_verdict() -> None:
    rng = np.random.default_rng(7)

    assert compare_runs([50.0] * 4, _baseline_values(rng), quantile=0.5, alpha=0.01).verdict == "too few samples"
    assert compare_runs([50.0] * 40, [10.0, 11.0, 9.0], quantile=0.5, alpha=0.01).verdict == "too few samples"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0, "quantile": 0.5}, "alpha"),
        ({"alpha": 0.01, "quantile": 0.5, "floor": -0.1}, "floor"),
        ({"alpha": 0.01, "quantile": 1.0}, "quantile"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_runs([1.0] * 10, [1.0, 1.1, 0.9, 1.0, 1.05], **kwargs)


def test_distribution_keeps_n_shape_and_run_values_through_json() -> None:
    rng = np.random.default_rng(8)
    samples = _run(rng, 500)

    stored = Distribution.from_dict(Distribution.of(samples, [19.0, 21.0]).as_dict())
    redrawn = stored.sample()

    assert stored.n == 500 and stored.run_values == (19.0, 21.0)
    assert np.median(redrawn) == pytest.approx(np.median(samples), rel=0.02)
    assert np.quantile(redrawn, 0.9) == pytest.approx(np.quantile(samples, 0.9), rel=0.03)


def test_distribution_refuses_unsorted_quantiles() -> None:
    with pytest.raises(ValueError, match="ascending"):
        Distribution.from_dict({"n": 3, "quantiles": [3.0, 1.0]})


def test_times_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        compare_runs([0.0] * 10, [1.0, 1.1, 0.9, 1.0, 1.05], quantile=0.5, alpha=0.01)
