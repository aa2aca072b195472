"""The benchmark's arithmetic, summary and table, plus one small run against real bundled backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from utilities.perf.batch_timing import (
    Profile,
    Run,
    Spread,
    ideal_schedule_s,
    read_row_numbers,
    row_number_problems,
    summarize,
)
from utilities.perf.bench import bench_command
from utilities.perf.bench_report import render_markdown

pytestmark = pytest.mark.area("Performance tooling")


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, 0.0), (1, 0.2), (10, 0.2), (100, 0.2), (101, 0.4), (1000, 2.0), (1001, 2.2)],
    ids=lambda v: str(v),
)
def test_ideal_schedule_is_one_latency_per_wave_of_b_times_c_rows(n: int, expected: float) -> None:
    assert ideal_schedule_s(n, latency_ms=200, batch_size=10, concurrency=10) == pytest.approx(expected)


def test_ideal_schedule_is_zero_without_latency_and_unknown_for_a_target_as_configured() -> None:
    assert Profile("zero", latency_ms=0, batch_size=10, concurrency=10).ideal_s(1000) == 0
    assert Profile("target as configured").ideal_s(1000) is None


def _run(profile: str, n: int, attempt: int, total: float, problems: list[str] | None = None) -> Run:
    return Run(
        profile=profile,
        n=n,
        attempt=attempt,
        status="completed",
        upload_s=total / 4,
        processing_s=total / 2,
        download_s=total / 4,
        total_s=total,
        rows=n,
        problems=problems or [],
    )


def test_summary_takes_median_and_spread_of_valid_runs_and_counts_failed_ones() -> None:
    profile = Profile("slow", latency_ms=200, batch_size=10, concurrency=10)
    runs = [
        _run("slow", 1000, 1, 2.6),
        _run("slow", 1000, 2, 2.2),
        _run("slow", 1000, 3, 2.4),
        _run("slow", 1000, 4, 0.1, ["batch ended failed, expected completed"]),
    ]

    [summary] = summarize(runs, [profile])

    assert summary.total_s == Spread(median=2.4, min=2.2, max=2.6)
    assert summary.processing_s == pytest.approx(1.2)
    assert (summary.runs, summary.failed_runs) == (4, 1)
    assert summary.ideal_s == pytest.approx(2.0)
    assert summary.ratio == pytest.approx(1.2)
    assert summary.processing_ratio == pytest.approx(0.6)


def test_summary_has_no_ratio_without_an_ideal() -> None:
    [summary] = summarize([_run("zero", 10, 1, 0.08)], [Profile("zero", 0, 10, 10)])
    assert summary.ideal_s == 0
    assert summary.ratio is None


def test_markdown_table_has_one_row_per_point_and_names_the_polling_resolution() -> None:
    profiles = [Profile("zero", 0, 10, 10), Profile("L=200 ms", 200, 10, 10)]
    runs = [_run("zero", 10, 1, 0.08), _run("L=200 ms", 10, 1, 0.3), _run("L=200 ms", 10, 2, 0.26)]

    table = render_markdown(summarize(runs, profiles), poll_interval_s=0.02)

    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| profile | N | total s (median) | total min–max |")
    assert rows[1] == "| zero | 10 | 0.080 | 0.080–0.080 | 0.020 | 0.040 | 0.020 | – | 0.000 | – | – | – | 1 (0) |"
    assert rows[2].startswith("| L=200 ms | 10 | 0.280 | 0.260–0.300 |")
    assert rows[2].endswith("| 0.200 | 1.40 | 0.70 | – | 2 (0) |")
    assert "every 20 ms" in table


def test_row_number_check_names_a_short_download_and_the_first_row_out_of_order() -> None:
    download = "\ufeffrow_number,prompt\r\n1,a\r\n3,c\r\n2,b\r\n".encode()
    numbers = read_row_numbers(download)
    assert numbers == ["1", "3", "2"]
    assert row_number_problems(numbers, 3) == ["row 2 has row_number '3', expected 2"]
    assert row_number_problems(numbers[:2], 3)[0] == "2 rows downloaded, expected 3"
    assert row_number_problems(["1", "2", "3"], 3) == []


@pytest.mark.slow
def test_small_bench_against_bundled_backends_writes_validated_reports(tmp_path: Path) -> None:
    out = tmp_path / "bench"

    result = CliRunner().invoke(
        bench_command, ["--sizes", "10", "--repeat", "1", "--latency-ms", "50", "--out", str(out)]
    )

    assert result.exit_code == 0, result.output
    assert (out / "bench.json").is_file() and (out / "bench.md").is_file()
    report = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert [r["profile"] for r in report["runs"]] == ["zero latency", "L=50 ms, B=10, C=10"]
    for run in report["runs"]:
        assert run["status"] == "completed"
        assert run["rows"] == 10
        assert run["problems"] == []
    assert report["machine"]["cpu_count"] >= 1
    latency = report["summaries"][1]
    assert latency["ideal_s"] == pytest.approx(0.05)
    assert latency["ratio"] >= 1
    assert "| L=50 ms, B=10, C=10 | 10 |" in (out / "bench.md").read_text(encoding="utf-8")
