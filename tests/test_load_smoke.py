"""`batchqa load --profile smoke` against a bundled backend, then `batchqa gate` on the run.

Locust cannot be imported inside pytest (TOOLCHAIN.md), so both run as subprocesses, the way CI
would run them. The gate must pass here and must fail on a deliberately tightened baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utilities.perf.gate import Baseline, MetricRule, default_baseline

pytestmark = [pytest.mark.perf, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[1]
SMOKE_BUDGET_S = 60


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BATCHQA_BASE_URL"}  # always the bundled backend
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _explain(result: subprocess.CompletedProcess[str], run: Path | None = None) -> str:
    text = f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    if run and (run / "locust.log").exists():
        text += "\nlocust.log:\n" + (run / "locust.log").read_text(encoding="utf-8")[-3000:]
    return text


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    run = tmp_path_factory.mktemp("load") / "smoke"
    started = time.monotonic()
    result = _run(["utilities.perf.load", "--profile", "smoke", "--out", str(run)], timeout=180)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, _explain(result, run)
    return run, elapsed


def test_smoke_profile_runs_within_budget_and_collects_every_artifact(smoke_run: tuple[Path, float]) -> None:
    run, elapsed = smoke_run
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    metrics = summary["metrics"]

    assert elapsed <= SMOKE_BUDGET_S, f"smoke took {elapsed:.0f} s including backend start"
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust.json", "memory.csv", "index.html"):
        assert (run / name).stat().st_size > 0, name
    for plot in ("latency.png", "throughput.png", "completion.png", "gaps.png", "memory.png"):
        assert (run / plot).exists(), plot
    assert metrics["batch_count[1000]"] >= 1
    assert metrics["validation_failures"] == 0
    assert metrics["socket_messages"] > 0, "no progress socket message was measured"
    assert summary["memory_source"].startswith("VmRSS of PID")


def test_gate_passes_the_smoke_run_against_its_baseline(smoke_run: tuple[Path, float], tmp_path: Path) -> None:
    run, _ = smoke_run
    result = _run(["utilities.perf.gate", "--run", str(run), "--history", str(tmp_path / "history.jsonl")], timeout=60)

    assert result.returncode == 0, _explain(result)
    assert "gate passed" in result.stdout


def _tightened(rule: MetricRule) -> dict:
    """The same rule with a third of the baseline (three times, if higher is better) and no slack."""
    data = rule.as_dict()
    if rule.baseline is not None:
        data["baseline"] = rule.baseline / 3 if rule.better == "lower" else rule.baseline * 3 + 1
        data["tolerance_pct"] = data["tolerance_abs"] = 0
        data.pop("limit", None)
    return data


def test_gate_fails_with_a_table_of_breaches_on_a_tightened_baseline(
    smoke_run: tuple[Path, float], tmp_path: Path
) -> None:
    run, _ = smoke_run
    baseline = Baseline.load(default_baseline("smoke"))
    tight = tmp_path / "smoke-tight.json"
    tight.write_text(
        json.dumps({**baseline.as_dict(), "metrics": {r.name: _tightened(r) for r in baseline.rules}}),
        encoding="utf-8",
    )

    result = _run(
        ["utilities.perf.gate", "--run", str(run), "--baseline", str(tight), "--no-record"],
        timeout=60,
    )

    assert result.returncode == 1, _explain(result)
    assert "gate FAILED" in result.stdout
    assert "FAIL by" in result.stdout
    assert "batch_p50_s[1000]" in result.stdout
