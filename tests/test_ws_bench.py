"""The socket benchmark: its arithmetic, and one small real run through the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from utilities.perf.ws_bench import cpu_burner, raise_fd_limit, ws_bench_command
from utilities.perf.ws_bench_point import Distribution, Point
from utilities.perf.ws_bench_report import render_markdown

pytestmark = pytest.mark.area("Progress WebSocket")


def test_distribution_is_in_milliseconds_with_interpolated_percentiles() -> None:
    spread = Distribution.of_seconds([0.001 * i for i in range(1, 101)])
    assert spread.samples == 100
    assert spread.p50 == pytest.approx(50.5)
    assert spread.p95 == pytest.approx(95.05)
    assert spread.max == pytest.approx(100.0)
    assert Distribution.of_seconds([]) == Distribution(0, None, None, None, None)


def test_fd_limit_is_raised_but_never_lowered() -> None:
    soft, _hard = raise_fd_limit(64)
    assert soft >= 64
    assert raise_fd_limit(16)[0] == soft


def test_markdown_row_shows_memory_in_kib_and_missing_values_as_dashes() -> None:
    point = Point(10, connected=10, busy_core=True, memory_per_socket_bytes=51200.0, load_average=(1.0, 2.0))
    table = render_markdown([point], {"rows": 4, "latency_ms": 300.0})
    assert "| 10 | this checkout | yes | 10 | 50.0 | – | – |" in table
    assert "| 1.0→2.0 |" in table


def test_cpu_burner_spins_on_the_last_cpu_and_is_gone_afterwards() -> None:
    with cpu_burner(True) as pid:
        assert pid is not None
        assert os.sched_getaffinity(pid) == {max(os.sched_getaffinity(0))}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with cpu_burner(False) as nothing:
        assert nothing is None


@pytest.mark.slow
def test_small_run_writes_json_markdown_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "ws-bench"
    args = ["--sockets", "5,20", "--rows", "4", "--latency-ms", "300", "--out", str(out)]
    result = CliRunner().invoke(ws_bench_command, args)
    assert result.exit_code == 0, result.output
    document = json.loads((out / "ws-bench.json").read_text())
    points = {p["sockets"]: p for p in document["points"]}
    assert set(points) == {5, 20}
    for count, point in points.items():
        assert (point["connected"], point["terminal_received"], point["problems"]) == (count, count, [])
        assert point["lag_ms"]["samples"] >= count * 4, "every socket saw every row's event live"
        assert point["memory_per_socket_bytes"] is not None
    assert (out / "ws-bench.md").read_text().count("\n| ") >= 3
    assert (out / "ws-bench.png").stat().st_size > 1000


def test_compare_with_needs_a_checkout_with_the_backend(tmp_path: Path) -> None:
    result = CliRunner().invoke(ws_bench_command, ["--compare-with", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "has no reference_backend/" in result.output
