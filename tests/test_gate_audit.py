"""The audit's bookkeeping (counts, the smallest fault detected) and the per-request sample files it reads."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from utilities.perf.gate import wide_console
from utilities.perf.gate_audit import Audit, Outcome, markdown, rejudge_runs
from utilities.perf.gate_rules import Baseline, RegressionRule
from utilities.perf.gate_runs import read_samples
from utilities.perf.gate_stats import Distribution
from utilities.perf.load import join_samples

pytestmark = pytest.mark.area("Performance tooling")
REPO_ROOT = Path(__file__).resolve().parents[1]


def _outcome(fault: str, verdict: str, regressions: tuple[str, ...] = ()) -> Outcome:
    return Outcome(fault, verdict, list(regressions), [], [], 25.0 if fault else 1.0, 0.1, 1.0, verdict)


def test_smallest_fault_detected_in_95_percent_of_runs() -> None:
    audit = Audit(
        [_outcome("", "pass")] * 20
        + [_outcome("slow_requests=2", "fail", ("upload",))] * 10
        + [_outcome("slow_requests=2", "pass")] * 10
        + [_outcome("slow_requests=5", "fail", ("upload",))] * 19
        + [_outcome("slow_requests=5", "inconclusive")]
        + [_outcome("slow_requests=8", "fail", ("upload",))] * 20
    )

    assert audit.smallest_detected() == "slow_requests=5"
    table = markdown(audit, ["upload"])
    assert "| none (unchanged code) | 20 | 0/20 | 0 | 0/20 | +1 % | 0 |" in table
    assert "| `slow_requests=5` | 20 | 19/20 | 1 | 19/20 | +25 % | 19 |" in table


def test_no_fault_setting_detected_often_enough() -> None:
    audit = Audit([_outcome("slow_requests=2", "fail", ("upload",)), _outcome("slow_requests=2", "pass")])

    assert audit.smallest_detected() is None


def _sample_writer() -> type:
    spec = importlib.util.spec_from_file_location("_perf_samples", REPO_ROOT / "perf" / "samples.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SampleWriter


def test_samples_from_every_process_are_joined_and_read_by_series(tmp_path: Path) -> None:
    writer_class = _sample_writer()
    first = writer_class(str(tmp_path / "locust_samples"))
    first.on_request("POST", "/api/v1/batch/upload", 12.5, context={"variant": "50 prompts"})
    first.on_request("POST", "/api/v1/batch/upload", 40.0, exception=RuntimeError("boom"))
    first.on_request("WS", "lag", 3.0)
    first.close()
    second = tmp_path / "locust_samples.99999999.csv"  # another process's file
    second.write_text("t,type,name,variant,ms,ok\n1.0,WS,lag,,5.0,1\n", encoding="utf-8")

    joined = join_samples(tmp_path)
    samples = read_samples(tmp_path)

    assert joined == tmp_path / "samples.csv" and not list(tmp_path.glob("locust_samples.*"))
    assert sorted(samples["WS lag"]) == [3.0, 5.0]
    assert list(samples["POST /api/v1/batch/upload [50 prompts]"]) == [12.5]
    assert list(samples["POST /api/v1/batch/upload"]) == [12.5]  # the failed request is no sample


def _write_run(directory: Path, scale: float, seed: int) -> None:
    directory.mkdir(parents=True)
    summary = {"profile": {"name": "smoke"}, "at": directory.name, "metrics": {"host_other_cores": 0.1}}
    (directory / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    times = 20.0 * scale * np.random.default_rng(seed).lognormal(0.0, 0.3, 60)
    rows = "".join(f"{i}.0,POST,/api/v1/batch/upload,,{ms:.3f},1\n" for i, ms in enumerate(times))
    (directory / "samples.csv").write_text("t,type,name,variant,ms,ok\n" + rows, encoding="utf-8")


def _upload_baseline() -> Baseline:
    """One upload rule whose ten baseline runs sit at 20 ms, ±10 %."""
    rule = RegressionRule(
        name="upload",
        series="POST /api/v1/batch/upload",
        label="upload",
        distribution=Distribution.of(np.full(100, 20.0), 20.0 * np.exp(np.linspace(-0.1, 0.1, 10))),
    )
    return Baseline("smoke", "test", (), (rule,))


def test_rejudge_gates_the_runs_an_audit_left_against_another_baseline(tmp_path: Path) -> None:
    out = tmp_path / "audit"
    for number in (1, 2):
        _write_run(out / f"none-{number:02d}", 1.0, number)
        _write_run(out / f"slow_requests-5-{number:02d}", 3.0, 10 + number)
    baseline = _upload_baseline()

    audit = rejudge_runs(out, baseline, console=wide_console())

    verdicts = {(o.fault, o.verdict) for o in audit.outcomes}
    assert verdicts == {("", "pass"), ("slow_requests=5", "fail")}
    assert len(audit.outcomes) == 4 and audit.smallest_detected() == "slow_requests=5"


def test_rejudge_with_a_rolling_window_follows_a_drifting_runner_and_still_catches_the_fault(tmp_path: Path) -> None:
    out = tmp_path / "audit"
    for number in range(1, 16):
        # Steady while the history fills, then the runner slows 6 % a run: +60 % by the last.
        drift = 1.0 + 0.06 * max(0, number - 5)
        _write_run(out / f"none-{number:02d}", drift, number)
        _write_run(out / f"slow_requests-5-{number:02d}", 3.0 * drift, 100 + number)
    baseline = _upload_baseline()

    fixed = rejudge_runs(out, baseline, console=wide_console())
    rolling = rejudge_runs(out, baseline, console=wide_console(), window=5)

    def verdicts(audit: Audit, fault: str) -> list[str]:
        return [o.verdict for o in audit.outcomes if o.fault == fault]

    assert verdicts(fixed, "").count("fail") >= 4  # the drift, read as a regression
    assert verdicts(rolling, "") == ["pass"] * 15
    assert verdicts(rolling, "slow_requests=5") == ["fail"] * 15


def test_rejudge_reads_sets_of_runs_and_judges_each_set_once(tmp_path: Path) -> None:
    out = tmp_path / "audit"
    for number in (1, 2):
        for member in (1, 2, 3):
            _write_run(out / f"none-{number:02d}" / f"run-{member}", 1.0, 10 * number + member)
            _write_run(out / f"slow_requests-5-{number:02d}" / f"run-{member}", 1.3, 100 + 10 * number + member)

    audit = rejudge_runs(out, _upload_baseline(), console=wide_console())

    assert [(o.fault, o.verdict) for o in audit.outcomes] == [("", "pass"), ("slow_requests=5", "fail")] * 2
