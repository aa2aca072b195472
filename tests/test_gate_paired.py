"""The two ways the gate's verdict moves less between runs: a set of K runs judged together (``batchqa load
--repeat K``, ``batchqa gate --run A --run B``), and each request paired with the live probe's reference request
of the same moment (``probe.csv``, series ``NAME / reference``). Seeded synthetic runs; no timing involved."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.test_gate import CALM, GAP, UPLOAD, _baseline, _upload_rule
from utilities.perf.gate import gate_command
from utilities.perf.gate_history import read_history
from utilities.perf.gate_rules import RegressionRule
from utilities.perf.gate_runs import RunError, read_runs, repeat_runs
from utilities.perf.gate_stats import Distribution, compare_run_set, compare_runs
from utilities.perf.gate_verdicts import RunInput, evaluate_runs
from utilities.perf.live_probe import PAIRED_SUFFIX, paired_ratios
from utilities.perf.load import repeat_directories

pytestmark = pytest.mark.area("Performance tooling")

BASELINE_RUNS = tuple(20.0 * np.exp(np.random.default_rng(11).normal(0.0, 0.07, 20)))


def _run_samples(rng: np.random.Generator, scale: float = 1.0, spread: float = 0.07) -> np.ndarray:
    """One run's 60 upload times: a level that moves ``spread`` (σ of log) between runs, ±30 % within."""
    return 20.0 * scale * math.exp(rng.normal(0.0, spread)) * rng.lognormal(0.0, 0.3, 60)


def test_a_set_of_k_runs_is_judged_by_their_geometric_mean_with_a_sqrt_1_over_k_interval() -> None:
    rng = np.random.default_rng(1)
    runs = [_run_samples(rng) for _ in range(4)]

    one = compare_runs(runs[0], BASELINE_RUNS, quantile=0.5, alpha=0.001)
    four = compare_run_set(runs, BASELINE_RUNS, quantile=0.5, alpha=0.001)

    medians = [float(np.median(r)) for r in runs]
    assert four.run_values == pytest.approx(medians) and four.judged == 4 and one.judged == 1
    assert four.describe().endswith("] over 4 runs") and one.describe().endswith("]")
    assert four.run_value == pytest.approx(math.exp(np.mean(np.log(medians))))
    width = {c: math.log(c.high / c.low) for c in (one, four)}
    k = len(BASELINE_RUNS)
    assert width[four] / width[one] == pytest.approx(math.sqrt((1 / 4 + 1 / k) / (1 + 1 / k)))


def test_sets_of_unchanged_runs_alarm_at_about_alpha_and_a_set_sees_what_one_run_cannot() -> None:
    rng = np.random.default_rng(2)
    trials, alpha = 400, 0.05

    alarms = sum(
        compare_run_set([_run_samples(rng) for _ in range(4)], BASELINE_RUNS, quantile=0.5, alpha=alpha).verdict
        == "regression"
        for _ in range(trials)
    )
    caught = {
        k: sum(
            compare_run_set(
                [_run_samples(rng, 1.25) for _ in range(k)], BASELINE_RUNS, quantile=0.5, alpha=0.001
            ).verdict
            == "regression"
            for _ in range(100)
        )
        for k in (1, 4)
    }

    assert 8 <= alarms <= 34, alarms  # Binomial(400, 0.05): mean 20, sd 4.4
    assert caught[1] <= 75 and caught[4] >= 95, caught  # seeded: 60 and 100 of 100


def test_the_gate_judges_a_set_limits_on_its_worst_run_and_busy_if_any_run_was() -> None:
    rng = np.random.default_rng(3)
    rule = _upload_rule(distribution=Distribution.of(np.full(100, 20.0), BASELINE_RUNS))
    quiet = [RunInput({"socket_gap_max_ms": 900, "host_other_cores": 0.1}, {UPLOAD: _run_samples(rng)}, CALM)]
    quiet += [RunInput({"socket_gap_max_ms": 2100, "host_other_cores": 0.9}, {UPLOAD: _run_samples(rng)}, CALM)]

    report = evaluate_runs(quiet, _baseline(GAP, rule))

    assert report.runs == 2 and report.busy and report.other_cores == 0.9
    assert [c.value for c in report.limits] == [2100] and not report.ok
    [check] = report.regressions
    assert check.comparison is not None and check.comparison.judged == 2


def test_a_run_short_of_samples_leaves_the_sets_rule_unjudged() -> None:
    rng = np.random.default_rng(4)
    runs = [RunInput({}, {UPLOAD: _run_samples(rng)}, CALM), RunInput({}, {UPLOAD: np.full(3, 20.0)}, CALM)]

    [check] = evaluate_runs(runs, _baseline(_upload_rule())).regressions

    assert check.status == "skipped" and "fewer than 8" in check.note


def test_pairing_cancels_what_slows_the_reference_too_and_keeps_the_requests_own_cost() -> None:
    """The server's pace swings 3x over the run (the load's interleaving, a neighbour): uploads and the
    reference both follow it. Each upload divided by the reference of its moment keeps only the upload's
    own cost, so a +25 % in the upload path shows as +25 %, whatever the pace."""
    rng = np.random.default_rng(5)
    pace = lambda t: 1.0 + np.sin(t / 3.0) ** 2 * 2.0  # noqa: E731
    ref_t = np.arange(0.0, 60.0, 0.25)
    reference = (ref_t, 5.0 * pace(ref_t) * rng.lognormal(0.0, 0.1, ref_t.size))
    ends = np.sort(rng.uniform(2.0, 58.0, 200))

    def uploads(cost: float) -> np.ndarray:
        return 20.0 * cost * pace(ends) * rng.lognormal(0.0, 0.1, ends.size)

    raw, slower = uploads(1.0), uploads(1.25)
    paired, paired_slower = paired_ratios(ends, raw, reference), paired_ratios(ends, slower, reference)

    assert paired.size == ends.size
    assert np.std(np.log(paired)) < 0.5 * np.std(np.log(raw))
    assert np.median(paired_slower) / np.median(paired) == pytest.approx(1.25, rel=0.05)


def test_a_request_no_reference_came_near_is_left_out() -> None:
    reference = (np.array([10.0, 10.25]), np.array([5.0, 7.0]))

    ratios = paired_ratios(np.array([10.1, 30.0]), np.array([12.0, 12.0]), reference)

    assert list(ratios) == [2.0]


def _write_run(directory: Path, rng: np.random.Generator, scale: float = 1.0, *, probe: bool = True) -> Path:
    directory.mkdir(parents=True)
    summary = {
        "profile": {"name": "smoke"},
        "target": "bundled backend",
        "at": directory.name,
        "metrics": {"socket_gap_max_ms": 1100, "host_other_cores": 0.1},
        "calibration": CALM.as_dict(),
    }
    (directory / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    ends = 1000.0 + np.sort(rng.uniform(1.0, 19.0, 60))
    rows = "".join(
        f"{t:.3f},POST,/api/v1/batch/upload,50 prompts,{ms:.3f},1\n"
        for t, ms in zip(ends, _run_samples(rng, scale), strict=True)
    )
    (directory / "samples.csv").write_text("t,type,name,variant,ms,ok\n" + rows, encoding="utf-8")
    if probe:
        ref_t = np.arange(1000.0, 1020.0, 0.25)
        lines = "".join(f"{t:.3f},reference,{5.0 * rng.lognormal(0.0, 0.05):.3f},1\n" for t in ref_t)
        (directory / "probe.csv").write_text("t,part,ms,ok\n" + lines + f"{ref_t[0]:.3f},cpu,0.5,1\n", encoding="utf-8")
    return directory


def test_a_set_directory_is_read_in_run_order_and_its_paired_series_beside_the_raw(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    for number in (10, 2, 1):
        _write_run(tmp_path / "set" / f"run-{number}", rng)
    (tmp_path / "set" / "run-x").mkdir()

    runs = read_runs(tmp_path / "set")

    assert [r.path.name for r in runs] == ["run-1", "run-2", "run-10"]
    paired = runs[0].samples[UPLOAD + PAIRED_SUFFIX]
    assert paired.size == 60 and np.median(paired) == pytest.approx(np.median(runs[0].samples[UPLOAD]) / 5.0, rel=0.1)
    with pytest.raises(RunError, match="no run summary"):
        read_runs(tmp_path / "empty")


def test_load_repeat_clears_what_an_earlier_run_or_set_left(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    _write_run(out, np.random.default_rng(7))
    _write_run(out / "run-3", np.random.default_rng(8))

    assert repeat_directories(out, 1) == [out] and (out / "summary.json").exists()
    assert repeat_directories(out, 2) == [out / "run-1", out / "run-2"]
    assert not (out / "summary.json").exists() and not (out / "run-3").exists()


def _paired_rule(values: tuple[float, ...] | None) -> RegressionRule:
    distribution = None if values is None else Distribution.of(values, values)
    series = UPLOAD + PAIRED_SUFFIX
    return RegressionRule(name="upload_paired", series=series, label="upload ÷ reference", unit="×", normalise=False,
                          distribution=distribution)  # fmt: skip


def test_the_command_judges_a_set_records_each_run_and_a_paired_rule_without_runs_waits(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    path = tmp_path / "smoke.json"
    _baseline(
        GAP, _upload_rule(distribution=Distribution.of(np.full(100, 20.0), BASELINE_RUNS)), _paired_rule(None)
    ).write(path)
    sets = [_write_run(tmp_path / "set" / f"run-{n}", rng, 1.4) for n in (1, 2, 3)]
    history = tmp_path / "history.jsonl"

    result = CliRunner().invoke(
        gate_command, ["--run", str(tmp_path / "set"), "--baseline", str(path), "--history", str(history), "--no-trend"]
    )

    assert result.exit_code == 1, result.output
    assert "geometric mean of 3 runs" in result.output and "upload p50 +" in result.output
    assert "skipped (the baseline holds 0 runs" in result.output
    entries = read_history(history)
    assert [e["run"] for e in entries] == [str(s) for s in sets]
    assert len({e["rules"]["upload"]["value"] for e in entries}) == 3 and entries[0]["judged_runs"] == 3


def test_a_paired_rule_is_judged_on_the_ratios_and_sees_a_cost_in_the_upload_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    ratios = tuple(4.0 * np.exp(np.random.default_rng(12).normal(0.0, 0.05, 20)))
    path = tmp_path / "smoke.json"
    _baseline(GAP, _paired_rule(ratios)).write(path)
    unchanged = _write_run(tmp_path / "unchanged", rng)
    slower = _write_run(tmp_path / "slower", rng, 1.5)

    ok = CliRunner().invoke(gate_command, ["--run", str(unchanged), "--baseline", str(path), "--no-record"])
    failed = CliRunner().invoke(gate_command, ["--run", str(slower), "--baseline", str(path), "--no-record"])

    assert ok.exit_code == 0, ok.output
    assert failed.exit_code == 1 and "upload ÷ reference p50 +" in failed.output


def test_a_set_of_runs_is_read_in_run_order_and_skips_runs_without_a_summary(tmp_path: Path) -> None:
    for number in (1, 2, 10, 11):
        (tmp_path / f"run-{number}").mkdir()
        if number != 11:  # a run cut off before it wrote its summary
            (tmp_path / f"run-{number}" / "summary.json").write_text("{}")
    (tmp_path / "run-x").mkdir()
    assert [d.name for d in repeat_runs(tmp_path)] == ["run-1", "run-2", "run-10"]
    assert repeat_runs(tmp_path / "run-1") == []
