"""The gate's arithmetic: thresholds, breaches, missing metrics, history regressions, the metrics it reads."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from utilities.perf.gate import (
    BASELINES_DIR,
    Baseline,
    MetricRule,
    compare_history,
    evaluate,
    gate_command,
    read_history,
    rebaseline,
)
from utilities.perf.load import memory_growth, percentile, summarize_entries
from utilities.perf.scaling import linear_fit

P95_UPLOAD = "http_p95_ms[POST /api/v1/batch/upload]"


def _latency(baseline: float = 40.0, pct: float = 60.0, abs_ms: float = 15.0) -> MetricRule:
    return MetricRule(name=P95_UPLOAD, baseline=baseline, tolerance_pct=pct, tolerance_abs=abs_ms, unit=" ms")


def _baseline(*rules: MetricRule) -> Baseline:
    return Baseline("smoke", "test baseline", rules)


def test_run_within_tolerance_passes() -> None:
    report = evaluate({P95_UPLOAD: 60.0}, _baseline(_latency()))

    assert report.ok, report.problems()
    assert [c.status for c in report.checks] == ["pass"]
    assert report.checks[0].change_pct == pytest.approx(50.0)


def test_doubled_latency_breaches_and_says_by_how_much() -> None:
    report = evaluate({P95_UPLOAD: 80.0}, _baseline(_latency()))

    [check] = report.checks
    assert check.status == "fail"
    assert check.rule.threshold == pytest.approx(64.0)
    assert check.over_pct == pytest.approx(25.0)
    assert report.problems() == [f"{P95_UPLOAD} = 80.0 ms, above the threshold 64.0 ms by 16.0 ms (+25%)"]


def test_absolute_tolerance_keeps_a_few_milliseconds_from_failing() -> None:
    rule = _latency(baseline=4.0, pct=60.0, abs_ms=15.0)

    assert rule.threshold == pytest.approx(19.0)
    assert evaluate({P95_UPLOAD: 8.0}, _baseline(rule)).ok
    assert not evaluate({P95_UPLOAD: 19.5}, _baseline(rule)).ok


def test_higher_is_better_fails_when_throughput_drops() -> None:
    rule = MetricRule(name="prompts_per_min", better="higher", baseline=50_000, tolerance_pct=40)

    assert rule.threshold == pytest.approx(30_000)
    assert evaluate({"prompts_per_min": 31_000}, _baseline(rule)).ok
    report = evaluate({"prompts_per_min": 20_000}, _baseline(rule))
    assert report.checks[0].status == "fail"
    assert report.checks[0].change_pct == pytest.approx(60.0)  # positive = worse, whatever the direction
    assert "below the threshold" in report.problems()[0]


def test_hard_limit_applies_alone_or_as_the_stricter_bound() -> None:
    r2 = MetricRule(name="scaling_r2", better="higher", limit=0.99)
    gap = MetricRule(name="socket_gap_max_ms", baseline=1100, tolerance_pct=100, limit=2000)

    assert evaluate({"scaling_r2": 0.995}, _baseline(r2)).ok
    assert not evaluate({"scaling_r2": 0.98}, _baseline(r2)).ok
    assert gap.threshold == 2000  # the contract's ceiling is stricter than baseline + 100 %
    assert not evaluate({"socket_gap_max_ms": 2100}, _baseline(gap)).ok


def test_missing_required_metric_fails_and_an_optional_one_is_skipped() -> None:
    required = MetricRule(name="socket_lag_p95_ms", baseline=200, tolerance_pct=50)
    optional = MetricRule(name="memory_growth_mb", baseline=5, tolerance_abs=30, required=False)

    report = evaluate({}, _baseline(required, optional))

    assert [c.status for c in report.checks] == ["missing", "skipped"]
    assert report.problems() == ["socket_lag_p95_ms: not measured in this run (required)"]
    assert [c.rule.name for c in report.failures()] == ["socket_lag_p95_ms"]


def test_cpu_bound_breach_on_a_busy_machine_is_inconclusive_unless_strict() -> None:
    latency = replace(_latency(), cpu_bound=True)
    gap = MetricRule(name="socket_gap_max_ms", baseline=1100, tolerance_pct=50, limit=2000)
    rules = replace(_baseline(latency, gap), max_other_cores=0.5)
    busy = {P95_UPLOAD: 200.0, "socket_gap_max_ms": 1200.0, "host_other_cores": 1.6}

    report = evaluate(busy, rules)
    strict = evaluate(busy, rules, strict=True)
    quiet = evaluate({**busy, "host_other_cores": 0.2}, rules)

    assert report.busy and report.ok
    assert [c.status for c in report.checks] == ["inconclusive", "pass"]
    assert not strict.ok and not quiet.ok
    assert [c.status for c in quiet.checks] == ["fail", "pass"]


def test_a_rule_needs_a_baseline_or_a_limit() -> None:
    with pytest.raises(ValueError, match="baseline, a limit or both"):
        MetricRule(name="x")


def _entry(profile: str, value: float, *, passed: bool = True, target: str = "bundled backend") -> dict:
    return {"profile": profile, "target": target, "passed": passed, "metrics": {P95_UPLOAD: value}}


def test_history_reports_regression_in_percent_against_the_median_of_earlier_passing_runs() -> None:
    history = [
        _entry("smoke", 100),
        _entry("smoke", 90),
        _entry("smoke", 500, passed=False),  # a failed run is no reference
        _entry("nightly", 10),  # nor is another profile
        _entry("smoke", 110),
    ]

    [trend] = compare_history(
        {P95_UPLOAD: 130.0}, history, [_latency()], profile="smoke", target="bundled backend", regression_pct=10
    )

    assert (trend.reference, trend.runs) == (100, 3)
    assert trend.change_pct == pytest.approx(30.0)
    assert trend.regression


def test_history_does_not_flag_noise_or_improvements() -> None:
    history = [_entry("smoke", 100), _entry("smoke", 100)]
    rules = [_latency()]

    [slower] = compare_history({P95_UPLOAD: 105.0}, history, rules, profile="smoke", target="bundled backend")
    [faster] = compare_history({P95_UPLOAD: 50.0}, history, rules, profile="smoke", target="bundled backend")
    [tiny] = compare_history(
        {P95_UPLOAD: 4.0}, [_entry("smoke", 3)], rules, profile="smoke", target="bundled backend"
    )  # +33 %, but 1 ms is below half the absolute tolerance

    assert not slower.regression and slower.change_pct == pytest.approx(5.0)
    assert not faster.regression and faster.change_pct == pytest.approx(-50.0)
    assert not tiny.regression


def test_history_only_compares_runs_against_the_same_target() -> None:
    history = [_entry("smoke", 10, target="http://staging")]
    assert compare_history({P95_UPLOAD: 50.0}, history, [_latency()], profile="smoke", target="bundled backend") == []


def test_rebaseline_takes_the_median_keeps_tolerances_and_warns_when_noise_nears_them() -> None:
    rules = _baseline(
        _latency(baseline=1.0, pct=50, abs_ms=0), MetricRule(name="scaling_r2", better="higher", limit=0.99)
    )
    runs = [{"metrics": {P95_UPLOAD: v}, "at": str(i)} for i, v in enumerate((40.0, 44.0, 75.0))]

    updated, warnings = rebaseline(rules, runs)

    latency = updated.rules[0]
    assert (latency.baseline, latency.observed, latency.tolerance_pct) == (44.0, (40.0, 44.0, 75.0), 50)
    assert updated.rules[1] == rules.rules[1]
    assert updated.measured["runs"] == 3
    assert len(warnings) == 1 and P95_UPLOAD in warnings[0]  # 75 is past 44 * 1.5


def _write_run(tmp_path: Path, metrics: dict[str, float]) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    summary = {"profile": {"name": "smoke"}, "target": "bundled backend", "at": "now", "metrics": metrics}
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return run


def test_gate_command_exits_1_with_a_table_of_what_failed_and_records_the_run(tmp_path: Path) -> None:
    baseline = tmp_path / "smoke.json"
    _baseline(_latency(), MetricRule(name="failure_ratio", baseline=0, tolerance_abs=0.01)).write(baseline)
    run = _write_run(tmp_path, {P95_UPLOAD: 90.0, "failure_ratio": 0.0})
    history = tmp_path / "history.jsonl"

    result = CliRunner().invoke(
        gate_command, ["--run", str(run), "--baseline", str(baseline), "--history", str(history)]
    )

    assert result.exit_code == 1, result.output
    assert "FAIL by 26.0 ms (+41%)" in result.output
    assert "gate FAILED" in result.output
    [recorded] = read_history(history)
    assert recorded["passed"] is False and recorded["metrics"][P95_UPLOAD] == 90.0


def test_gate_command_passes_and_compares_with_history(tmp_path: Path) -> None:
    baseline = tmp_path / "smoke.json"
    _baseline(_latency(pct=100)).write(baseline)
    run = _write_run(tmp_path, {P95_UPLOAD: 70.0})
    history = tmp_path / "history.jsonl"
    history.write_text(json.dumps(_entry("smoke", 40.0)) + "\n", encoding="utf-8")

    result = CliRunner().invoke(
        gate_command, ["--run", str(run), "--baseline", str(baseline), "--history", str(history), "--no-record"]
    )

    assert result.exit_code == 0, result.output
    assert "+75%" in result.output and "REGRESSION" in result.output  # past half the 100 % tolerance
    assert "gate passed" in result.output
    assert len(read_history(history)) == 1


@pytest.mark.parametrize("path", sorted(BASELINES_DIR.glob("*.json")), ids=lambda p: p.name)
def test_committed_baselines_load_and_explain_every_metric(path: Path) -> None:
    baseline = Baseline.load(path)

    assert baseline.profile == path.stem
    for rule in baseline.rules:
        assert rule.description and rule.why, f"{rule.name} must say how it was measured and why its tolerance"


def test_percentile_reads_locusts_rounded_histogram() -> None:
    histogram = {"10": 50, "20": 45, "300": 4, "1000": 1}

    assert percentile(histogram, 0.50) == 10
    assert percentile(histogram, 0.95) == 20
    assert percentile(histogram, 0.99) == 300
    assert percentile({}, 0.5) is None


def test_memory_growth_compares_medians_after_warm_up() -> None:
    mib = 1024 * 1024
    samples = [(t / 2, (100 if t < 10 else 150 + t // 10) * mib) for t in range(0, 60)]

    assert memory_growth(samples, warmup_s=5) == pytest.approx(4.0)
    assert memory_growth(samples[:3], warmup_s=5) is None


def _stats(method: str, name: str, times: dict[str, int], *, failures: int = 0, total: float = 0.0) -> dict:
    count = sum(times.values())
    return {
        "method": method,
        "name": name,
        "num_requests": count,
        "num_failures": failures,
        "start_time": 1000.0,
        "last_request_timestamp": 1060.0,
        "response_times": times,
        "max_response_time": max(float(k) for k in times) if times else 0,
        "total_response_time": total,
    }


def test_summary_separates_requests_from_socket_samples() -> None:
    entries = [
        _stats("POST", "/api/v1/batch/upload", {"20": 99, "90": 1}, failures=1),
        _stats("BATCH", "complete 1000", {"1500": 9, "2100": 1}),
        _stats("WS", "lag", {"5": 900, "200": 100}),
        _stats("WS", "gap", {"1000": 10, "1100": 1}),
        _stats("WS", "held", {"60000": 10}, total=600_000.0),
    ]

    metrics = summarize_entries(entries, memory=[], warmup_s=0)

    assert metrics["failure_ratio"] == pytest.approx(1 / 110)  # lag, gap and held samples are not operations
    assert metrics[P95_UPLOAD] == 20
    assert metrics["batch_p50_s[1000]"] == 1.5
    assert metrics["prompts_per_min"] == pytest.approx(10 * 1000)  # 10 batches of 1000 in 60 s
    assert metrics["socket_lag_p95_ms"] == 200
    assert metrics["socket_gap_max_ms"] == 1100
    assert metrics["sockets_open_avg"] == pytest.approx(10.0)


def test_linear_fit_of_a_line_is_exact_and_noise_lowers_r2() -> None:
    exact = linear_fit([10, 100, 1000], [0.02 + 0.0005 * n for n in (10, 100, 1000)])
    noisy = linear_fit([10, 100, 250, 500, 1000], [0.03, 0.2, 0.1, 0.3, 0.5])

    assert exact.slope == pytest.approx(0.0005) and exact.r2 == pytest.approx(1.0)
    assert noisy.r2 < 0.95
