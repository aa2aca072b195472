"""The progress WebSocket against real servers: cadence, pause, reconnect, restart, fan-out, refusals, limits.

Timing bounds wait on conditions and allow for a shared 2-core machine: the server promises a
heartbeat after ``BATCHQA_HEARTBEAT_SECONDS`` (1 s) of silence and the contract caps silence at 2 s;
``GAP_TOLERANCE_S`` covers only the measuring side (the recorder thread waking up late under CPU
contention), not the server.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from utilities.client.api import BatchApi
from utilities.client.progress_messages import parse_time
from utilities.client.recorders import PollingRecorder, WebSocketRecorder
from utilities.client.socket_probe import probe_socket
from utilities.client.spec_numbers import UPDATE_EVERY_S
from utilities.procs.backend import BackendProcess

from .helpers import csv_bytes, prompt_rows

pytestmark = pytest.mark.area("Progress WebSocket")
MAX_SILENCE_S = UPDATE_EVERY_S
GAP_TOLERANCE_S = 0.25
# 1.5 s per provider call of 5 rows, one call at a time: progress every ~1.5 s, so the 1 s heartbeat
# has to fill every gap, and there is time to pause, drop and resume mid-batch.
SLOW = {"BATCHQA_PROVIDER_LATENCY_MS": "1500", "BATCHQA_PROVIDER_BATCH_SIZE": "5", "BATCHQA_WORKER_CONCURRENCY": "1"}


@pytest.fixture(scope="module")
def ws_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    server = BackendProcess(tmp_path_factory.mktemp("ws-slow"), env=SLOW)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ws_api(make_api: Callable[..., BatchApi], ws_backend: BackendProcess) -> BatchApi:
    return make_api(ws_backend.url)


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


def upload(api: BatchApi, rows: int, name: str = "ws.csv") -> str:
    return api.upload(content=csv_bytes(prompt_rows(rows)), filename=name)["batch_id"]


def wait_for_seq(api: BatchApi, batch_id: str, seq: int, *, timeout: float = 60.0) -> None:
    """Poll the status endpoint until the batch's seq reaches ``seq``."""
    deadline = time.monotonic() + timeout
    while (current := api.status(batch_id)["seq"]) < seq:
        assert time.monotonic() < deadline, f"seq still {current} < {seq} after {timeout:.0f} s"
        time.sleep(0.05)  # the polling interval of this wait, not a synchronisation


def test_slow_batch_gets_progress_and_heartbeats_with_no_gap_over_two_seconds(
    ws_api: BatchApi, ws_backend: BackendProcess, recorders: Callable[..., WebSocketRecorder]
) -> None:
    batch = upload(ws_api, 20)
    recorder = recorders(ws_backend.url, batch, token=ws_api.token)
    terminal = recorder.wait_for_terminal(timeout=60)

    report = recorder.report(max_gap_s=MAX_SILENCE_S + GAP_TOLERANCE_S)
    assert report.problems() == [], report.render()
    assert terminal.kind == "completed" and terminal.message["processed"] == 20
    assert recorder.messages[0].kind == "snapshot"
    assert report.by_type.get("progress", 0) >= 3, report.render()
    assert report.by_type.get("heartbeat", 0) >= 2, "1.5 s between events: heartbeats must fill the gaps"
    assert report.gap_max_s is not None and report.gap_max_s <= MAX_SILENCE_S + GAP_TOLERANCE_S


def test_fast_progress_is_coalesced_to_one_push_per_window(
    slow_api: BatchApi, slow_backend: BackendProcess, recorders: Callable[..., WebSocketRecorder]
) -> None:
    # The slow_backend stores an event every ~100 ms; the default window is 250 ms.
    batch = upload(slow_api, 100)
    recorder = recorders(slow_backend.url, batch, token=slow_api.token)
    recorder.wait_for_terminal(timeout=60)

    report = recorder.report()
    assert report.problems() == [], report.render()
    assert report.skipped_seq > 0, "events ~100 ms apart must have been merged"
    progress = [m for m in recorder.messages if m.kind == "progress"]
    pushes = [parse_time(m.message["server_time"]) or 0.0 for m in progress]
    # server_time is the wall-clock time of the decision to send, read beside the monotonic clock the window is
    # measured on, however late the message then leaves: 5 ms of slack covers the two clocks' reads, not the CPU.
    too_close = [round(b - a, 3) for a, b in itertools.pairwise(pushes) if b - a < 0.25 - 0.005]
    assert too_close == [], f"progress pushed closer than the 250 ms window: {too_close}"


def test_paused_batch_keeps_sending_heartbeats(
    ws_api: BatchApi, ws_backend: BackendProcess, recorders: Callable[..., WebSocketRecorder]
) -> None:
    batch = upload(ws_api, 20)
    recorder = recorders(ws_backend.url, batch, token=ws_api.token)
    try:
        recorder.wait_for(lambda m: m.kind == "progress", timeout=30)
        ws_api.pause(batch)
        paused = recorder.wait_for(lambda m: m.kind == "status" and m.status == "paused", timeout=10)
        start = recorder.messages.index(paused)
        # Longer than 2 s paused: three heartbeats after the pause message.
        recorder.wait_until(
            lambda r: sum(1 for m in r.messages[start:] if m.kind == "heartbeat" and m.status == "paused") >= 3,
            timeout=15,
        )
    finally:
        ws_api.cancel(batch)  # the module's backend runs one call at a time: leave nothing running

    during = recorder.messages[start:]
    beats = [m for m in during if m.kind == "heartbeat"]
    assert beats[-1].at - paused.at > MAX_SILENCE_S, "the pause lasted longer than the silence limit"
    gaps = [b.at - a.at for a, b in itertools.pairwise(during)]
    assert max(gaps) <= MAX_SILENCE_S + GAP_TOLERANCE_S, f"gaps while paused: {gaps}"
    assert {m.message["seq"] for m in beats} <= {m.message["seq"] for m in during if m.kind != "heartbeat"}
    recorder.wait_for(lambda m: m.status == "cancelled", timeout=10)
    assert recorder.report().problems() == [], recorder.report().render()


def test_reconnect_mid_batch_replays_what_was_missed_without_duplicates(
    ws_api: BatchApi, ws_backend: BackendProcess, recorders: Callable[..., WebSocketRecorder]
) -> None:
    batch = upload(ws_api, 20)
    recorder = recorders(ws_backend.url, batch, token=ws_api.token)
    recorder.wait_for(lambda m: m.kind == "progress", timeout=30)
    recorder.disconnect()
    seen = recorder.last_seq
    assert seen is not None
    wait_for_seq(ws_api, batch, seen + 2)  # events happen while the client is away
    recorder.reconnect()
    recorder.wait_for_terminal(timeout=60)

    report = recorder.report()
    assert report.problems() == [], report.render()
    assert report.connections == 2
    after = [m for m in recorder.messages if m.connection == 1]
    assert after[0].kind == "progress" and after[0].seq == seen + 1, "the replay starts right after last_seq"
    assert [m.seq for m in after[:2]] == [seen + 1, seen + 2], "everything missed is replayed, nothing skipped"

    # A late client asking for everything gets every stored event, in order, then the live tail.
    final_seq = recorder.terminal.seq if recorder.terminal else None
    history = recorders(ws_backend.url, batch, token=ws_api.token, last_seq=0)
    history.wait_for_terminal(timeout=30)
    assert [m.seq for m in history.messages] == list(range(1, (final_seq or 0) + 1))
    assert history.report(strict_seq=True).problems() == []


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_restarted_server_mid_batch_the_client_resumes_where_it_was(
    how: str, make_api: Callable[..., BatchApi], recorders: Callable[..., WebSocketRecorder], tmp_path: Path
) -> None:
    env = {"BATCHQA_PROVIDER_LATENCY_MS": "200", "BATCHQA_PROVIDER_BATCH_SIZE": "2", "BATCHQA_WORKER_CONCURRENCY": "1"}
    first = BackendProcess(tmp_path / "data", env=env)
    second: BackendProcess | None = None
    try:
        first.start()
        api = make_api(first.url)
        batch = upload(api, 40)
        recorder = recorders(first.url, batch, token=api.token, reconnect_timeout_s=60)
        before = recorder.wait_for(lambda m: m.message.get("processed", 0) >= 10, timeout=60)
        first.stop(kill=how == "sigkill")
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
    assert report.connections >= 2, "the client reconnected"
    assert recorder.connections[0].close_code == (1012 if how == "sigterm" else 1006)
    resumed = [m for m in recorder.messages if m.connection > 0]
    assert resumed and resumed[0].seq is not None and before.seq is not None
    assert resumed[0].seq > before.seq, "seq kept increasing across the restart"
    assert (terminal.status, terminal.message["processed"]) == ("completed", 40)


@pytest.mark.slow
def test_hundred_concurrent_sockets_all_receive_the_terminal_event(
    start_backend: Callable[..., BackendProcess],
    make_api: Callable[..., BatchApi],
    recorders: Callable[..., WebSocketRecorder],
) -> None:
    # Every batch is paused right after its upload and resumed once all 100 sockets are in, so each
    # terminal event is a live one. One row per call, two calls in flight, ten rows: a batch could only
    # finish before its pause if the pause came >= 0.5 s after the upload.
    server = start_backend(
        env={
            "BATCHQA_PROVIDER_LATENCY_MS": "100",
            "BATCHQA_PROVIDER_BATCH_SIZE": "1",
            "BATCHQA_WORKER_CONCURRENCY": "2",
        }
    )
    users = [make_api(server.url) for _ in range(4)]
    batches: dict[str, BatchApi] = {}
    for i in range(21):
        api = users[i % 4]
        batch = upload(api, 10, f"fan-out-{i}.csv")
        api.pause(batch)
        batches[batch] = api
    shared, *separate = batches
    # 40 sockets on one batch, 60 more three to a batch on twenty others.
    targets = [(batches[shared], shared)] * 40 + [(batches[b], b) for b in separate for _ in range(3)]
    assert len(targets) == 100

    watching = [recorders(server.url, batch, token=api.token) for api, batch in targets]
    for recorder in watching:
        recorder.wait_for(lambda m: m.kind == "snapshot", timeout=60)
    for batch, api in batches.items():
        api.resume(batch)
    for recorder in watching:
        recorder.wait_for_terminal(timeout=120)

    for recorder in watching:
        report = recorder.report()
        assert report.problems() == [], report.render()
        assert recorder.terminal is not None and recorder.terminal.kind == "completed", "a live terminal event"
    assert len({r.batch_id for r in watching}) == 21
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


@pytest.fixture
def other_batch(make_api: Callable[..., BatchApi]) -> str:
    return upload(make_api(prefix="other"), 2)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("no credentials", 4401),
        ("forged token", 4401),
        ("malformed authorization header", 4401),
        ("missing batch", 4404),
        ("another user's batch", 4404),
        ("foreign origin", 4403),
        ("origin of another port", 4403),
    ],
    ids=lambda v: str(v),
)
def test_socket_is_refused_with_its_close_code(
    case: str, code: int, api: BatchApi, backend: BackendProcess, other_batch: str
) -> None:
    own = upload(api, 2)
    bearer = {"Authorization": f"Bearer {api.token}"}
    host_port = backend.url.rsplit(":", 1)[1]
    attempt = {
        "no credentials": dict(batch_id=own),
        "forged token": dict(batch_id=own, headers={"Authorization": "Bearer not.a.token"}),
        "malformed authorization header": dict(batch_id=own, headers={"Authorization": "Basic dXNlcjpwdw=="}),
        "missing batch": dict(batch_id="0" * 32, headers=bearer),
        "another user's batch": dict(batch_id=other_batch, headers=bearer),
        "foreign origin": dict(batch_id=own, headers=bearer, origin="https://evil.example.test"),
        "origin of another port": dict(batch_id=own, headers=bearer, origin=f"http://127.0.0.1:{int(host_port) + 1}"),
    }[case]
    outcome = probe_socket(backend.url, timeout=10, **attempt)  # type: ignore[arg-type]
    assert (outcome.close_code, outcome.messages) == (code, [])
    if code == 4404:
        assert outcome.close_reason == "batch not found", "another user's batch looks exactly like a missing one"


@pytest.mark.parametrize("how", ["bearer header", "token query", "session cookie", "own origin"])
def test_socket_accepts_every_documented_credential(how: str, api: BatchApi, backend: BackendProcess) -> None:
    batch = upload(api, 2)
    options = {
        "bearer header": dict(headers={"Authorization": f"Bearer {api.token}"}),
        "token query": dict(query_token=api.token),
        "session cookie": dict(headers={"Cookie": f"batchqa_session={api.token}"}),
        "own origin": dict(headers={"Authorization": f"Bearer {api.token}"}, origin=backend.url),
    }[how]
    outcome = probe_socket(backend.url, batch, until_messages=1, timeout=10, **options)  # type: ignore[arg-type]
    assert outcome.close_code is None and outcome.first is not None
    assert (outcome.first["type"], outcome.first["batch_id"]) == ("snapshot", batch)


def test_configured_allowed_origin_is_accepted_and_others_refused(
    start_backend: Callable[..., BackendProcess], make_api: Callable[..., BatchApi]
) -> None:
    server = start_backend(env={"BATCHQA_ALLOWED_ORIGINS": '["https://app.example.test"]'})
    api = make_api(server.url)
    batch = upload(api, 2)
    bearer = {"Authorization": f"Bearer {api.token}"}
    allowed = probe_socket(server.url, batch, headers=bearer, origin="https://app.example.test", until_messages=1)
    assert allowed.close_code is None and allowed.first is not None and allowed.first["type"] == "snapshot"
    refused = probe_socket(server.url, batch, headers=bearer, origin="https://other.example.test")
    assert refused.close_code == 4403


@pytest.mark.parametrize(
    ("send", "code"),
    [
        pytest.param(["x" * 4097], 1009, id="one message over 4 KiB"),
        pytest.param([b"\x00" * 4097], 1009, id="one binary message over 4 KiB"),
        pytest.param(['{"type":"ping"}'] * 100, 1008, id="100 messages at once"),
    ],
)
def test_abusive_client_messages_close_the_socket_and_the_server_stays_up(
    send: list[str | bytes], code: int, api: BatchApi, backend: BackendProcess
) -> None:
    batch = upload(api, 2)
    bearer = {"Authorization": f"Bearer {api.token}"}
    outcome = probe_socket(backend.url, batch, headers=bearer, send=send, timeout=15)
    assert outcome.close_code == code, outcome

    assert httpx.get(f"{backend.url}/healthz", timeout=10).status_code == 200
    again = probe_socket(backend.url, batch, headers=bearer, until_messages=1)
    assert again.first is not None and again.first["type"] == "snapshot"


def test_small_client_messages_are_ignored(api: BatchApi, backend: BackendProcess) -> None:
    batch = upload(api, 2)
    api.wait_until(batch)
    bearer = {"Authorization": f"Bearer {api.token}"}
    at_limit = "x" * 4096
    # The heartbeat comes a second after the snapshot, long after the server read both messages.
    outcome = probe_socket(
        backend.url, batch, headers=bearer, send=['{"type":"ping"}', at_limit], until_messages=2, timeout=15
    )
    assert outcome.close_code is None, outcome
    assert [m["type"] for m in outcome.messages] == ["snapshot", "heartbeat"]


def test_polling_alone_reaches_the_same_final_state_as_the_socket(
    ws_api: BatchApi, ws_backend: BackendProcess, recorders: Callable[..., WebSocketRecorder]
) -> None:
    batch = upload(ws_api, 10)
    socket = recorders(ws_backend.url, batch, token=ws_api.token)
    with PollingRecorder(ws_backend.url, batch, token=ws_api.token, interval_s=0.5) as polling:
        assert polling.join(timeout=60), "polling never saw the batch finish"
    socket.wait_for_terminal(timeout=30)

    poll_report, socket_report = polling.report(), socket.report()
    assert poll_report.problems() == [], poll_report.render()
    assert socket_report.problems() == [], socket_report.render()
    assert poll_report.final_state == socket_report.final_state, "the status endpoint and the socket agree on seq"
    assert poll_report.final_state is not None and poll_report.final_state["status"] == "completed"
