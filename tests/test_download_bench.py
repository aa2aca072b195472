"""The download bench measures every format and coding of a finished batch and renders a table."""

from __future__ import annotations

import pytest

from utilities.client.api import BatchApi
from utilities.perf.download_bench import DownloadPoint, measure, render_markdown

from .helpers import csv_bytes, prompt_rows

pytestmark = pytest.mark.area("Downloads")


def test_measure_reports_smaller_wire_bytes_for_compressed_codings(api: BatchApi) -> None:
    batch_id = api.upload(content=csv_bytes(prompt_rows(200)), filename="bench.csv")["batch_id"]
    api.wait_until(batch_id)
    points = {(p.fmt, p.coding): p for p in measure(api.http, batch_id, "plain", repeat=1)}
    assert set(points) == {(f, c) for f in ("csv", "json") for c in ("identity", "gzip", "br")} | {("zip", "identity")}
    for fmt in ("csv", "json"):
        plain = points[(fmt, "identity")]
        assert plain.wire_bytes == plain.body_bytes
        for coding in ("gzip", "br"):
            assert points[(fmt, coding)].body_bytes == plain.body_bytes
            assert points[(fmt, coding)].wire_bytes * 4 < plain.wire_bytes


def test_the_table_adds_the_link_time_of_the_wire_bytes() -> None:
    point = DownloadPoint("plain", "csv", "gzip", wire_bytes=1_000_000, body_bytes=8_000_000, median_s=0.1, min_s=0.09)
    assert point.link_s(80) == 0.2
    table = render_markdown([point], link_mbit=80, load="1.0 / 1.0 / 1.0")
    assert "| plain | csv | gzip | 1,000,000 | 8,000,000 | 8.0× | 100 ms | 200 ms |" in table
