"""The real CC0 sample end to end: upload, complete, and three downloads that match the file and each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from utilities.check.download_comparison import compare_downloads
from utilities.check.download_reader import Download, load_download
from utilities.check.download_validator import validate
from utilities.check.input_reader import read_input
from utilities.client.api import BatchApi

pytestmark = pytest.mark.area("Ingest")

FORMATS = ("csv", "json", "zip")
REAL_ROWS = 175


@pytest.fixture
def completed_downloads(api: BatchApi, real_prompts_csv: Path) -> dict[str, Download]:
    accepted = api.upload(real_prompts_csv)
    assert (accepted["total"], accepted["columns"]) == (REAL_ROWS, ["act", "prompt"])
    final = api.wait_until(accepted["batch_id"], timeout=60)
    assert final["status"] == "completed", final
    return {fmt: load_download(api.download(accepted["batch_id"], fmt), fmt) for fmt in FORMATS}


def test_real_sample_downloads_match_the_file_and_each_other(
    completed_downloads: dict[str, Download], real_prompts_csv: Path
) -> None:
    table = read_input(real_prompts_csv)
    assert len(table) == REAL_ROWS
    for download in completed_downloads.values():
        report = validate(table, download)
        assert report.problems() == [], report.summary()
        assert (report.rows_checked, report.succeeded) == (REAL_ROWS, REAL_ROWS), report.summary()
    for left, right in (("csv", "json"), ("json", "zip"), ("csv", "zip")):
        comparison = compare_downloads(completed_downloads[left], completed_downloads[right])
        assert comparison.problems() == [], comparison.summary()
