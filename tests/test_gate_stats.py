"""The gate's statistics on seeded synthetic samples: false-alarm rate near α, shifts detected, the
effect-size floor, the Bonferroni correction and the stored distribution. No timing involved."""

from __future__ import annotations

import numpy as np
import pytest

from utilities.perf.gate_stats import Distribution, bonferroni, compare_shift, spread_floor


def _latencies(rng: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray:
    """Right-skewed like request times: 20 ms median, a long tail."""
    return 20.0 * scale * rng.lognormal(0.0, 0.4, n)


def test_same_distribution_is_called_a_regression_about_alpha_of_the_time() -> None:
    rng = np.random.default_rng(1)
    trials, alpha = 400, 0.05

    rejections = sum(
        compare_shift(_latencies(rng, 50), _latencies(rng, 200), alpha=alpha).verdict == "regression"
        for i in range(trials)
    )

    # Binomial(400, 0.05): mean 20, sd 4.4; the Mann–Whitney test holds its level on independent samples.
    assert 8 <= rejections <= 32, rejections


def test_bonferroni_keeps_the_whole_gate_under_its_false_alarm_rate() -> None:
    rng = np.random.default_rng(2)
    rules, trials = 7, 300
    alpha = bonferroni(0.01, rules)

    gates_failed = sum(
        any(
            compare_shift(_latencies(rng, 40), _latencies(rng, 200), alpha=alpha).verdict == "regression"
            for r in range(rules)
        )
        for t in range(trials)
    )

    assert alpha == pytest.approx(0.01 / 7)
    assert gates_failed <= 8, f"{gates_failed} of {trials} gates failed on identical distributions"


def test_a_quarter_slower_is_detected_with_its_interval() -> None:
    rng = np.random.default_rng(3)

    result = compare_shift(_latencies(rng, 300, 1.25), _latencies(rng, 1000), alpha=0.001, floor=0.10)

    assert result.verdict == "regression"
    assert result.low > 1.10 and result.low < result.shift < result.high
    assert result.shift == pytest.approx(1.25, abs=0.08)
    assert result.median_ratio == pytest.approx(1.25, abs=0.12)
    assert result.describe().startswith("+2")


def test_faster_runs_are_never_regressions() -> None:
    rng = np.random.default_rng(4)

    result = compare_shift(_latencies(rng, 300, 0.5), _latencies(rng, 1000), alpha=0.01)

    assert result.verdict == "no regression" and result.change_pct < -40


def test_a_tiny_shift_on_a_big_sample_is_significant_but_below_the_floor() -> None:
    rng = np.random.default_rng(5)
    run, baseline = _latencies(rng, 3000, 1.04), _latencies(rng, 3000)

    without_floor = compare_shift(run, baseline, alpha=0.001)
    with_floor = compare_shift(run, baseline, alpha=0.001, floor=0.10)

    assert without_floor.verdict == "regression"
    assert with_floor.verdict == "no regression"


def test_too_few_samples_get_no_verdict() -> None:
    assert compare_shift([50.0] * 4, [10.0] * 100, alpha=0.01).verdict == "too few samples"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"alpha": 0.0}, "alpha"), ({"alpha": 0.01, "floor": -0.1}, "floor")],
)
def test_bad_parameters_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_shift([1.0] * 10, [1.0] * 10, **kwargs)


def test_distribution_keeps_n_and_shape_through_json() -> None:
    rng = np.random.default_rng(6)
    samples = _latencies(rng, 500)

    stored = Distribution.from_dict(Distribution.of(samples, [19.0, 21.0]).as_dict())
    redrawn = stored.sample()

    assert stored.n == 500 and stored.run_medians == (19.0, 21.0)
    assert np.median(redrawn) == pytest.approx(np.median(samples), rel=0.02)
    assert np.quantile(redrawn, 0.9) == pytest.approx(np.quantile(samples, 0.9), rel=0.03)


def test_distribution_refuses_unsorted_quantiles() -> None:
    with pytest.raises(ValueError, match="ascending"):
        Distribution.from_dict({"n": 3, "quantiles": [3.0, 1.0]})


def test_floor_covers_the_spread_between_baseline_runs() -> None:
    assert spread_floor([20.0, 20.5, 19.8, 20.2, 20.1], minimum=0.10) == pytest.approx(0.10)
    assert spread_floor([20.0, 24.0, 20.0, 19.0, 20.0], minimum=0.10) == pytest.approx(1.5 * 0.20)
    assert spread_floor([20.0], minimum=0.10) == pytest.approx(0.10)


def test_times_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        compare_shift([0.0] * 10, [1.0] * 10, alpha=0.01)
