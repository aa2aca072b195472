"""A server killed mid-batch and started again on the same data dir finishes every row exactly once."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from utilities.client.api import BatchApi
from utilities.procs.backend import BackendProcess

from .helpers import csv_bytes, prompt_rows

pytestmark = pytest.mark.area("Queue and states")

SLOW = {
    "BATCHQA_PROVIDER_LATENCY_MS": "50",
    "BATCHQA_PROVIDER_BATCH_SIZE": "5",
    "BATCHQA_WORKER_CONCURRENCY": "1",
}


def _attempts(data_dir: Path, batch_id: str) -> dict[int, int]:
    with sqlite3.connect(data_dir / "batchqa.sqlite3") as db:
        return dict(db.execute("SELECT row_number, attempts FROM rows WHERE batch_id = ?", (batch_id,)).fetchall())


def test_killed_server_resumes_and_runs_no_finished_row_twice(
    start_backend: Callable[..., BackendProcess], make_api: Callable[..., BatchApi], tmp_path: Path
) -> None:
    data_dir = tmp_path / "shared-data"
    first = start_backend(env=SLOW, data_dir=data_dir)
    api = make_api(first.url)
    batch = api.upload(content=csv_bytes(prompt_rows(100)), filename="restart.csv")["batch_id"]
    api.wait_for_progress(batch, 20)
    done_before = {
        r["row_number"]: r for r in json.loads(api.download(batch, "json"))["rows"] if r["status"] == "succeeded"
    }
    assert 20 <= len(done_before) < 100, "the kill must land mid-batch"
    first.stop(kill=True)

    second = start_backend(env=SLOW, data_dir=data_dir)
    resumed = make_api(second.url, register=False)
    resumed.use_token(api.token)  # the signing key lives in the data dir, so the old token still works
    final = resumed.wait_until(batch, timeout=60)
    assert (final["status"], final["succeeded"], final["failed"], final["total"]) == (
        "completed",
        100,
        0,
        100,
    )

    rows = json.loads(resumed.download(batch, "json"))["rows"]
    assert [r["row_number"] for r in rows] == list(range(1, 101))
    for number, before in done_before.items():
        assert rows[number - 1] == before, f"row {number} finished before the kill and changed after it"
    attempts = _attempts(data_dir, batch)
    assert all(attempts[n] == 1 for n in done_before), "a finished row was claimed again after the restart"
    assert all(1 <= a <= 2 for a in attempts.values())
