"""Change points over the run history on seeded series: a step is found where it is, noise gives none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from utilities.perf.trend import change_points, series, trend_command

pytestmark = pytest.mark.area("Performance tooling")


def _noisy(rng: np.random.Generator, level: float, n: int) -> list[float]:
    return list(level * rng.lognormal(0.0, 0.08, n))


def test_a_step_of_a_third_is_found_where_it_happened() -> None:
    rng = np.random.default_rng(1)
    values = _noisy(rng, 20.0, 15) + _noisy(rng, 27.0, 10)

    assert change_points(values) == [15]


def test_noise_alone_has_no_change_point() -> None:
    false_alarms = sum(bool(change_points(_noisy(np.random.default_rng(seed), 20.0, 25))) for seed in range(40))

    assert false_alarms <= 2


def test_too_short_a_history_has_no_change_points() -> None:
    assert change_points([1.0, 5.0, 1.0, 5.0]) == []


def _entry(at: int, upload: float, **extra: object) -> dict:
    return {
        "profile": "smoke",
        "run_at": f"2026-12-01T00:{at:02d}:00",
        "rules": {"upload": {"statistic": "p50", "value": upload, "status": "pass"}},
        "metrics": {"socket_gap_max_ms": 1100.0},
        **extra,
    }


def test_series_leave_out_fault_and_busy_runs() -> None:
    entries = [_entry(1, 20.0), _entry(2, 90.0, faults="slow_requests=50"), _entry(3, 80.0, busy=True)]

    trends = series(entries)

    assert trends[("smoke", "upload")].values == [20.0]
    assert series(entries, include_busy=True)[("smoke", "upload")].values == [20.0, 80.0]


def test_trend_command_writes_a_plot_per_metric_and_names_the_change(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    history = tmp_path / "history.jsonl"
    levels = _noisy(rng, 20.0, 10) + _noisy(rng, 30.0, 8)
    history.write_text("".join(json.dumps(_entry(i, v)) + "\n" for i, v in enumerate(levels)), encoding="utf-8")
    out = tmp_path / "trend"

    result = CliRunner().invoke(trend_command, ["--history", str(history), "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert "smoke upload: 18 runs, change at run 11" in result.output
    assert (out / "smoke-upload.png").stat().st_size > 0 and (out / "index.html").exists()
    assert "no change point" in (out / "trend.txt").read_text(encoding="utf-8")  # socket_gap_max_ms is flat
