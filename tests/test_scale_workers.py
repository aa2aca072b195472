"""`batchqa scale-workers`: the ceiling, the schedule the prompts allow, the machine's CPU, and a real run."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from prometheus_client import generate_latest

from reference_backend.metrics import Metrics
from utilities.perf.scale_workers import HEADER, Point, Timing, pool_times, scale_command
from utilities.procs.services import RedisServer

from .conftest_services import service_missing

pytestmark = pytest.mark.area("Distributed mode")


def test_four_workers_are_held_to_the_rounds_1000_prompts_need_not_to_the_ceiling() -> None:
    point = Point(4, (Timing(0.80, 0.9, 0.1), Timing(0.75, 1.0, 0.2), Timing(0.90, 0.95, 0.3)), 1000, 0.2, 100)

    assert point.seconds == 0.80 and point.rate == 1250
    assert point.ceiling == 2000  # 4 workers x 100 rows in flight / 0.2 s
    assert point.schedule_s == pytest.approx(0.6)  # 1000 rows over 400 slots' rows: 3 rounds of 0.2 s
    assert point.machine_cpu == 0.95
    assert point.row().split()[:11] == ["4", "0.80", "1250", "2000", "62%", "0.60", "75%", "95%", "0.0", "0.0", "0.20"]


def test_claim_and_store_times_are_read_from_the_workers_metrics_and_taken_per_run() -> None:
    metrics = Metrics()
    for seconds in (0.010, 0.030):
        metrics.claim_seconds.observe(seconds)
    metrics.store_seconds.observe(0.050)
    before = pool_times(generate_latest(metrics.registry).decode())
    metrics.claim_seconds.observe(0.020)
    metrics.store_seconds.observe(0.010)
    metrics.store_seconds.observe(0.030)

    run = pool_times(generate_latest(metrics.registry).decode()) - before

    assert (before.claims, before.stores) == (2, 1) and before.claim_ms == pytest.approx(20.0)
    assert (run.claims, run.claim_ms, run.stores, run.store_ms) == (1, pytest.approx(20.0), 2, pytest.approx(20.0))
    point = Point(1, (Timing(2.2, 0.2, 0.05, run),), 1000, 0.2, 100)
    assert point.row().split()[8:10] == ["20.0", "20.0"]


@pytest.mark.slow
@pytest.mark.distributed
def test_a_small_run_prints_one_row_per_worker_count() -> None:
    if (reason := RedisServer.available()) is not None:
        service_missing(reason)
    args = ["--workers", "1,2", "--prompts", "40", "--repeat", "1", "--sqlite", "--latency-ms", "100"]

    result = CliRunner().invoke(scale_command, args)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = lines[lines.index(HEADER) + 1 :]
    assert [r.split()[0] for r in rows] == ["1", "2"]
    for row in rows:
        seconds, schedule, claim_ms = float(row.split()[1]), float(row.split()[5]), float(row.split()[8])
        assert seconds >= schedule, f"faster than the provider allows: {row}"
        assert claim_ms > 0, f"no claim read from the workers' /metrics: {row}"
