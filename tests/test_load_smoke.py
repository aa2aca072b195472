"""`batchqa load --profile smoke` against a bundled backend, then `batchqa gate` on the run.

Locust cannot be imported inside pytest, so both run as subprocesses, the way CI would run them. The
gate must pass here, and must fail on a backend slowed down by the fault switch (``BATCHQA_FAULTS``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.perf, pytest.mark.slow, pytest.mark.area("Performance tooling")]

REPO_ROOT = Path(__file__).resolve().parents[1]
SMOKE_BUDGET_S = 60
SLOW_REQUESTS_MS = 200


def _run(args: list[str], timeout: float, *, faults: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BATCHQA_BASE_URL"}  # always the bundled backend
    env["COLUMNS"] = "200"
    env["BATCHQA_FAULTS"] = faults
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

    # The budget holds on a machine that let the run work; each second its threads waited for a CPU (measured in
    # the same run, host_run_wait in s/s) stretches it, so a neighbour's load lengthens the budget, not fails it.
    budget = SMOKE_BUDGET_S * (1 + metrics.get("host_run_wait", 0.0))
    assert elapsed <= budget, f"smoke took {elapsed:.0f} s including backend start (budget {budget:.0f} s)"
    files = (
        "locust_stats.csv",
        "locust_stats_history.csv",
        "locust.json",
        "memory.csv",
        "index.html",
        "samples.csv",
        "idle.csv",
    )
    for name in files:
        assert (run / name).stat().st_size > 0, name
    for plot in ("latency.png", "throughput.png", "completion.png", "gaps.png", "memory.png"):
        assert (run / plot).exists(), plot
    assert metrics["batch_count[1000]"] >= 1
    assert metrics["validation_failures"] == 0
    assert metrics["socket_messages"] > 0, "no progress socket message was measured"
    assert summary["memory_source"].startswith("VmRSS of PID")
    assert summary["calibration"]["score_ms"] > 0 and summary["faults"] == ""


def test_gate_passes_the_smoke_run_against_its_baseline(smoke_run: tuple[Path, float]) -> None:
    """Contract limits strictly; regression rules only for a calibrated slowdown of 2x or more, so that a
    neighbour's load cannot fail the suite (on a busy machine a regression is inconclusive anyway)."""
    run, _ = smoke_run
    result = _run(["utilities.perf.gate", "--run", str(run), "--no-record", "--min-effect", "100"], timeout=60)

    assert result.returncode == 0, _explain(result)
    assert "gate passed" in result.stdout
    assert "contract limits (always enforced)" in result.stdout


def test_gate_fails_on_a_backend_made_slower_by_the_fault_switch(tmp_path: Path) -> None:
    """The gate's power against a real slowdown: every API request of the bundled backend waits 200 ms
    (several times an upload's own time). --strict, so a busy machine cannot turn it into inconclusive."""
    run = tmp_path / "slow"
    load = _run(
        ["utilities.perf.load", "--profile", "smoke", "--out", str(run), "--no-plots"],
        timeout=180,
        faults=f"slow_requests={SLOW_REQUESTS_MS}",
    )
    assert load.returncode == 0, _explain(load, run)
    assert json.loads((run / "summary.json").read_text(encoding="utf-8"))["faults"] == "slow_requests=200"

    result = _run(
        ["utilities.perf.gate", "--run", str(run), "--no-record", "--min-effect", "100", "--strict"], timeout=60
    )

    assert result.returncode == 1, _explain(result)
    assert "gate FAILED" in result.stdout
    line = r"upload p(50|10) \+\d+ % \[\+\d+ %, \+\d+ %\]: regression"
    assert re.search(line, result.stdout), result.stdout
