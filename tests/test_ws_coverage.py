"""Every event is covered by some socket message (from_seq..seq), live and replayed, across reconnects and restarts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from utilities.client.api import BatchApi
from utilities.client.progress_messages import Received
from utilities.client.recorders import WebSocketRecorder
from utilities.procs.backend import BackendProcess

from .helpers import csv_bytes, prompt_rows

pytestmark = pytest.mark.area("Progress WebSocket")


@pytest.fixture
def recorders() -> Iterator[Callable[..., WebSocketRecorder]]:
    """``recorders(url, batch_id, **options)`` starts a recorder; every one is stopped afterwards."""
    started: list[WebSocketRecorder] = []

    def start(base_url: str, batch_id: str, **options: object) -> WebSocketRecorder:
        recorder = WebSocketRecorder(base_url, batch_id, **options)  # type: ignore[arg-type]
        started.append(recorder)
        return recorder.start()

    yield start
    for recorder in started:
        recorder.stop()


def covered(messages: Sequence[Received]) -> set[int]:
    """The seqs the messages cover, read straight from the contract's table (not through CadenceReport)."""
    seqs: set[int] = set()
    for m in messages:
        seq, from_seq = m.message["seq"], m.message["from_seq"]
        if m.kind == "snapshot":
            assert from_seq == 1, f"a snapshot covers the whole history: {m.message}"
            seqs.update(range(1, seq + 1))
        elif m.kind == "heartbeat":
            assert from_seq == seq and seq in seqs, f"a heartbeat covers nothing new: {m.message}"
        else:
            assert from_seq <= seq, m.message
            seqs.update(range(from_seq, seq + 1))
    return seqs


def first_event_of(recorder: WebSocketRecorder, connection: int) -> Received:
    return next(m for m in recorder.messages if m.connection == connection and m.kind not in ("heartbeat",))


def wait_for_seq(api: BatchApi, batch_id: str, seq: int, *, timeout: float = 60.0) -> None:
    """Poll the status endpoint until the batch's seq reaches ``seq``."""
    deadline = time.monotonic() + timeout
    while (current := api.status(batch_id)["seq"]) < seq:
        assert time.monotonic() < deadline, f"seq still {current} < {seq} after {timeout:.0f} s"
        time.sleep(0.05)  # the polling interval of this wait, not a synchronisation


def upload(api: BatchApi, rows: int) -> str:
    return api.upload(content=csv_bytes(prompt_rows(rows)), filename="coverage.csv")["batch_id"]


def test_coalesced_ranges_join_without_a_hole_across_a_reconnect_mid_batch(
    slow_api: BatchApi, slow_backend: BackendProcess, recorders: Callable[..., WebSocketRecorder]
) -> None:
    # The slow backend stores an event every ~100 ms: the 250 ms window merges them.
    batch = upload(slow_api, 100)
    recorder = recorders(slow_backend.url, batch, token=slow_api.token)
    recorder.wait_for(lambda m: m.kind == "progress" and m.message["from_seq"] < m.message["seq"], timeout=60)
    recorder.disconnect()
    away_from = recorder.last_seq
    assert away_from is not None
    wait_for_seq(slow_api, batch, away_from + 3)  # events happen, and are coalesced, while the client is away
    recorder.reconnect()
    terminal = recorder.wait_for_terminal(timeout=90)

    report = recorder.report()
    assert report.problems() == [], report.render()
    assert report.connections == 2 and report.skipped_seq > 0, "coalescing merged events, none went missing"
    resumed = first_event_of(recorder, 1)
    assert resumed.message["from_seq"] == away_from + 1, "the replay starts right after last_seq"
    assert covered(recorder.messages) == set(range(1, terminal.message["seq"] + 1))


@pytest.mark.slow
def test_ranges_join_across_a_restart_of_the_api_process(
    make_api: Callable[..., BatchApi], recorders: Callable[..., WebSocketRecorder], tmp_path: Path
) -> None:
    env = {"BATCHQA_PROVIDER_LATENCY_MS": "100", "BATCHQA_PROVIDER_BATCH_SIZE": "2", "BATCHQA_WORKER_CONCURRENCY": "1"}
    first = BackendProcess(tmp_path / "data", env=env)
    second: BackendProcess | None = None
    try:
        first.start()
        api = make_api(first.url)
        batch = upload(api, 60)
        recorder = recorders(first.url, batch, token=api.token, reconnect_timeout_s=60)
        recorder.wait_for(lambda m: m.message.get("processed", 0) >= 10, timeout=60)
        first.stop()
        # Same data dir and port: the signing key, the events and the seq all live in the data dir.
        second = BackendProcess(tmp_path / "data", env=env, port=int(first.url.rsplit(":", 1)[1]))
        second.start()
        terminal = recorder.wait_for_terminal(timeout=90)
    finally:
        for server in (first, second):
            if server is not None:
                server.stop()

    report = recorder.report()
    assert report.problems() == [], report.render()
    assert report.connections >= 2, "the client reconnected to the new process"
    last_before = max(m.seq or 0 for m in recorder.messages if m.connection == 0)
    assert first_event_of(recorder, 1).message["from_seq"] <= last_before + 1
    assert covered(recorder.messages) == set(range(1, terminal.message["seq"] + 1))
