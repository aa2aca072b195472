"""A full batch of long, multi-line, non-ASCII prompts goes in whole and comes back exact in every format."""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from reference_backend.ingest import IngestLimits, parse_upload
from utilities.check.download_comparison import compare_downloads
from utilities.check.download_reader import load_download
from utilities.check.download_validator import validate
from utilities.check.input_reader import read_input
from utilities.client.api import BatchApi
from utilities.gen import long_prompt_rows, long_prompts_csv
from utilities.gen.hostile_corpus import ACCEPTED
from utilities.gen.hostile_file import HostileFile

pytestmark = pytest.mark.area("Ingest")

FORMATS = ("csv", "json", "zip")
PARSE_SECONDS = 0.5
# The parser may hold the text, the CSV reader's buffer (4 bytes a character) and the values: a 10 MB quoted
# prompt peaks at 93 MiB.
PARSE_PEAK_MIB = 128


def test_the_1000_row_file_has_what_it_claims() -> None:
    rows = long_prompt_rows()
    lengths = sorted(len(row["prompt"]) for row in rows)
    assert len(rows) == 1000
    assert lengths[-6:] == [32_832, 40_000, 40_000, 40_000, 40_000, 40_000]
    assert sum("\n" in row["prompt"] or "\r" in row["prompt"] for row in rows) > 500
    assert all(not row["prompt"].isascii() for row in rows[:50] if len(row["prompt"]) > 1000)
    assert long_prompts_csv() == long_prompts_csv()


def test_1000_long_multiline_prompts_round_trip_exactly_in_csv_json_and_zip(api: BatchApi, tmp_path: Path) -> None:
    source = tmp_path / "long-prompts.csv"
    source.write_bytes(long_prompts_csv())
    accepted = api.upload(source)
    assert accepted["total"] == 1000
    final = api.wait_until(accepted["batch_id"], timeout=120)
    assert (final["status"], final["succeeded"]) == ("completed", 1000), final
    table = read_input(source)
    expected = [row["prompt"] for row in long_prompt_rows()]
    downloads = {}
    for fmt in FORMATS:
        path = tmp_path / f"results.{fmt}"
        path.write_bytes(api.download(accepted["batch_id"], fmt))
        downloads[fmt] = load_download(path, fmt)
        report = validate(table, downloads[fmt])
        assert report.problems() == [], report.summary()
        assert report.rows_checked == 1000
        cli = subprocess.run(
            [sys.executable, "-m", "utilities.cli", "validate", str(source), str(path), "--format", fmt],
            capture_output=True,
            text=True,
            check=False,
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr
    assert [row.fields["prompt"] for row in downloads["json"].rows] == expected
    for left, right in (("csv", "json"), ("json", "zip")):
        comparison = compare_downloads(downloads[left], downloads[right])
        assert comparison.problems() == [], comparison.summary()


@pytest.mark.parametrize("entry", list(ACCEPTED.values()), ids=lambda entry: entry.name)
def test_costly_files_the_rules_accept_parse_fast_within_bounded_memory(entry: HostileFile) -> None:
    filename, data = entry()
    tracemalloc.start()
    try:
        started = time.perf_counter()
        table = parse_upload(filename, data, IngestLimits())
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert table.rows
    assert bool(table.failures) == (entry.code == "rows_failed")
    assert peak / 2**20 < PARSE_PEAK_MIB, f"{entry.name}: peak {peak / 2**20:.0f} MiB"
    assert elapsed < PARSE_SECONDS * 4, f"{entry.name} took {elapsed:.2f} s"  # tracemalloc slows it ~3x
