"""The progress WebSocket through the contract: who may open it, what it sends first, replay from ``last_seq``,
no gap in the seqs it covers, heartbeats within 2 s (paused too), one terminal message, and its close codes.

Timing bounds wait on conditions: the contract caps silence at 2 s; ``GAP_TOLERANCE_S`` covers only the
measuring side (the recorder's thread waking late on a busy machine), not the server.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import pytest

from utilities.check.contract_checks import TERMINAL, status_problems
from utilities.client.api import BatchApi
from utilities.client.progress_messages import ADVANCING_TYPES, Received
from utilities.client.recorders import PollingRecorder, WebSocketRecorder
from utilities.client.socket_probe import probe_socket
from utilities.client.spec_numbers import UPDATE_EVERY_S

from ..harness import Target
from ..payloads import csv_bytes, marked_rows

MAX_SILENCE_S = UPDATE_EVERY_S  # the socket's promise: a message at least every 2 s
GAP_TOLERANCE_S = 0.3


@pytest.fixture(autouse=True)
def _socket_capability(target: Target) -> None:
    target.require("progress_socket")


@pytest.fixture
def recorders(base_url: str) -> Iterator[Callable[..., WebSocketRecorder]]:
    """``recorders(batch_id, **options)`` starts a recorder on the target; every one is stopped afterwards."""
    started: list[WebSocketRecorder] = []

    def start(batch_id: str, **options: object) -> WebSocketRecorder:
        recorder = WebSocketRecorder(base_url, batch_id, **options)  # type: ignore[arg-type]
        started.append(recorder)
        return recorder.start()

    yield start
    for recorder in started:
        recorder.stop()


def upload(api: BatchApi, rows: int) -> str:
    data = marked_rows(rows)
    return api.upload(content=csv_bytes(data.rows, data.columns), filename="socket.csv")["batch_id"]


def message_problems(messages: list[Received]) -> list[str]:
    """The count and state promises every message with a state keeps (heartbeats repeat the last one)."""
    found = []
    for m in messages:
        if "total" in m.message:
            found += status_problems(m.message, where=f"{m.kind}#{m.seq}")
    return found


def coverage_problems(messages: list[Received]) -> list[str]:
    """With ``from_seq`` (a coalesced message names the first seq it stands for), covered seqs leave no gap."""
    found = []
    advancing = [m for m in messages if m.kind in ADVANCING_TYPES and m.seq is not None]
    for earlier, later in itertools.pairwise(advancing):
        start = later.message.get("from_seq")
        if start is None or earlier.connection != later.connection:
            continue
        if start > earlier.seq + 1:  # type: ignore[operator]
            found.append(f"replay promise broken: seqs {earlier.seq + 1}..{start - 1} covered by no message")  # type: ignore[operator]
        if start > later.seq:  # type: ignore[operator]
            found.append(f"{later.kind}#{later.seq}: from_seq {start} is after its own seq")
    return found


def heartbeat_seq_problems(messages: list[Received]) -> list[str]:
    """A heartbeat carries the latest seq sent on its connection without advancing it."""
    found, latest = [], {}
    for m in messages:
        if m.kind == "heartbeat" and m.seq != latest.get(m.connection):
            found.append(
                f"heartbeat promise broken: a heartbeat carries seq {m.seq}, the latest was {latest.get(m.connection)}"
            )
        elif m.seq is not None:
            latest[m.connection] = m.seq
    return found


def wait_for_seq(api: BatchApi, batch_id: str, seq: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while (current := api.status(batch_id)["seq"]) < seq:
        assert time.monotonic() < deadline, f"seq still {current} < {seq} after {timeout:.0f} s"
        time.sleep(0.05)  # the polling interval of this wait


@pytest.mark.parametrize("how", ["bearer header", "token query", "session cookie", "own origin"])
def test_socket_opens_with_every_documented_credential_and_starts_with_a_snapshot(
    how: str, shared_api: BatchApi, base_url: str
) -> None:
    batch = upload(shared_api, 2)
    shared_api.wait_until(batch, timeout=60)
    options = {
        "bearer header": {"headers": {"Authorization": f"Bearer {shared_api.token}"}},
        "token query": {"query_token": shared_api.token},
        "session cookie": {"headers": {"Cookie": f"batchqa_session={shared_api.token}"}},
        "own origin": {"headers": {"Authorization": f"Bearer {shared_api.token}"}, "origin": base_url},
    }[how]
    outcome = probe_socket(base_url, batch, until_messages=1, timeout=10, **options)  # type: ignore[arg-type]
    assert outcome.close_code is None and outcome.first is not None, (
        f"socket auth promise broken: the {how} was refused ({outcome.close_code} {outcome.close_reason})"
    )
    snapshot, status = outcome.first, shared_api.status(batch)
    assert snapshot["type"] == "snapshot", f"snapshot promise broken: the first message is a {snapshot['type']}"
    keys = ("batch_id", "status", "total", "processed", "succeeded", "failed", "cancelled", "percent", "seq")
    assert {k: snapshot.get(k) for k in keys} == {k: status.get(k) for k in keys}, (
        f"snapshot promise broken: the snapshot {snapshot} is not the current state {status}"
    )


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("no credentials", 4401),
        ("forged token", 4401),
        ("basic auth", 4401),
        ("missing batch", 4404),
        ("foreign origin", 4403),
        ("foreign origin without credentials", 4403),
        ("origin of another port", 4403),
        ("last_seq not a number", 1008),
        ("negative last_seq", 1008),
    ],
)
def test_socket_refusals_close_with_their_code(case: str, code: int, shared_api: BatchApi, base_url: str) -> None:
    batch = upload(shared_api, 2)
    bearer = {"Authorization": f"Bearer {shared_api.token}"}
    port = int(base_url.rsplit(":", 1)[1].split("/")[0])
    attempt: dict[str, object] = {
        "no credentials": {},
        "forged token": {"headers": {"Authorization": "Bearer not.a.token"}},
        "basic auth": {"headers": {"Authorization": "Basic dXNlcjpwdw=="}},
        "missing batch": {"headers": bearer, "batch_id": "0" * 32},
        "foreign origin": {"headers": bearer, "origin": "https://evil.example.test"},
        "foreign origin without credentials": {"origin": "https://evil.example.test"},
        "origin of another port": {"headers": bearer, "origin": f"http://127.0.0.1:{port + 1}"},
        "last_seq not a number": {"headers": bearer, "batch_id": f"{batch}?last_seq=abc"},
        "negative last_seq": {"headers": bearer, "batch_id": f"{batch}?last_seq=-1"},
    }[case]
    batch_id = str(attempt.pop("batch_id", batch))
    outcome = probe_socket(base_url, batch_id, until_messages=1, timeout=10, **attempt)  # type: ignore[arg-type]
    assert (outcome.close_code, outcome.messages) == (code, []), (
        f"socket refusal promise broken for {case}: expected close {code} before any message, got "
        f"{outcome.close_code} {outcome.close_reason!r} (HTTP {outcome.http_status}) with {outcome.messages[:1]}"
    )


def test_replay_from_zero_gives_every_stored_event_in_order_then_heartbeats(
    shared_api: BatchApi, recorders: Callable[..., WebSocketRecorder]
) -> None:
    batch = upload(shared_api, 30)
    final = shared_api.wait_until(batch, timeout=60)
    history = recorders(batch, token=shared_api.token, last_seq=0, stop_on_terminal=False)
    history.wait_until(lambda r: any(m.kind == "heartbeat" for m in r.messages), timeout=10)
    advancing = [m.seq for m in history.messages if m.kind in ADVANCING_TYPES]
    assert advancing == list(range(1, final["seq"] + 1)), (
        f"replay promise broken: last_seq=0 replayed seqs {advancing}, expected 1..{final['seq']}"
    )
    assert history.report(strict_seq=True).problems() == [], history.report().render()
    terminal = [m for m in history.messages if m.kind in ADVANCING_TYPES and m.status in TERMINAL]
    assert len(terminal) == 1, f"terminal promise broken: {len(terminal)} terminal messages in the history"
    assert message_problems(history.messages) == []


def test_replay_from_the_middle_starts_right_after_last_seq(
    shared_api: BatchApi, recorders: Callable[..., WebSocketRecorder]
) -> None:
    batch = upload(shared_api, 30)
    final = shared_api.wait_until(batch, timeout=60)
    middle = max(1, final["seq"] // 2)
    resumed = recorders(batch, token=shared_api.token, last_seq=middle, stop_on_terminal=False)
    resumed.wait_until(lambda r: any(m.kind == "heartbeat" for m in r.messages), timeout=10)
    advancing = [m.seq for m in resumed.messages if m.kind in ADVANCING_TYPES]
    assert advancing == list(range(middle + 1, final["seq"] + 1)), (
        f"replay promise broken: last_seq={middle} replayed {advancing}, expected {middle + 1}..{final['seq']}"
    )
    beyond = probe_socket(
        shared_api.base_url,
        f"{batch}?last_seq={final['seq'] + 100}",
        headers={"Authorization": f"Bearer {shared_api.token}"},
        until_messages=1,
    )
    assert beyond.first is not None and beyond.first["type"] == "snapshot", (
        f"replay promise broken: a last_seq beyond the batch must get a snapshot, got {beyond}"
    )


def test_live_batch_keeps_every_promise_through_a_reconnect(
    shared_api: BatchApi, recorders: Callable[..., WebSocketRecorder], target: Target
) -> None:
    target.require("slow_batches")
    batch = upload(shared_api, 300)
    recorder = recorders(batch, token=shared_api.token, stop_on_terminal=False)
    recorder.wait_for(lambda m: m.kind == "progress", timeout=30)
    recorder.disconnect()
    seen = recorder.last_seq
    assert seen is not None
    wait_for_seq(shared_api, batch, seen + 2)  # events happen while the client is away
    recorder.reconnect()
    terminal = recorder.wait_for_terminal(timeout=60)
    start = recorder.messages.index(terminal)
    recorder.wait_until(lambda r: sum(m.kind == "heartbeat" for m in r.messages[start:]) >= 2, timeout=10)

    report = recorder.report(max_gap_s=MAX_SILENCE_S + GAP_TOLERANCE_S)
    assert report.problems() == [], report.render()
    after = [m for m in recorder.messages if m.connection == 1 and m.kind in ADVANCING_TYPES]
    assert after and after[0].seq == seen + 1, f"replay promise broken: resumed after {seen} with {after[:1]}"
    assert [m.seq for m in after[:2]] == [seen + 1, seen + 2], "everything missed is replayed, nothing skipped"
    terminals = [m for m in recorder.messages if m.kind in ADVANCING_TYPES and m.status in TERMINAL]
    assert len(terminals) == 1, f"terminal promise broken: {len(terminals)} terminal messages: {terminals}"
    assert terminal.status == "completed" and terminal.message["processed"] == 300, terminal.message
    assert recorder.connections[-1].close_code is None, "the server keeps the socket open after the terminal message"
    problems = (
        message_problems(recorder.messages)
        + coverage_problems(recorder.messages)
        + heartbeat_seq_problems(recorder.messages)
    )
    assert problems == [], "\n".join(problems)
    assert shared_api.status(batch)["seq"] == terminal.seq, "the status endpoint's seq is the socket's"


def test_a_paused_batch_keeps_sending_heartbeats_within_two_seconds(
    shared_api: BatchApi, recorders: Callable[..., WebSocketRecorder], target: Target
) -> None:
    target.require("pause")
    target.require("slow_batches")
    batch = upload(shared_api, 300)
    recorder = recorders(batch, token=shared_api.token, stop_on_terminal=False)
    try:
        recorder.wait_for(lambda m: m.kind == "progress", timeout=30)
        shared_api.pause(batch)
        paused = recorder.wait_for(lambda m: m.status == "paused" and m.kind == "status", timeout=10)
        start = recorder.messages.index(paused)
        recorder.wait_until(
            lambda r: sum(m.kind == "heartbeat" and m.status == "paused" for m in r.messages[start:]) >= 3,
            timeout=15,
        )
    finally:
        shared_api.cancel(batch)
    during = recorder.messages[start:]
    beats = [m for m in during if m.kind == "heartbeat"]
    gaps = [round(b.at - a.at, 3) for a, b in itertools.pairwise(during)]
    assert beats[-1].at - paused.at > MAX_SILENCE_S, "the pause lasted longer than the silence limit"
    assert max(gaps) <= MAX_SILENCE_S + GAP_TOLERANCE_S, f"heartbeat promise broken: gaps while paused {gaps}"
    assert heartbeat_seq_problems(recorder.messages) == []
    recorder.wait_for(lambda m: m.status == "cancelled", timeout=10)
    assert message_problems(recorder.messages) == []


def test_polling_and_the_socket_agree_on_the_final_state(
    shared_api: BatchApi, recorders: Callable[..., WebSocketRecorder], base_url: str
) -> None:
    batch = upload(shared_api, 50)
    socket = recorders(batch, token=shared_api.token)
    with PollingRecorder(base_url, batch, token=shared_api.token, interval_s=0.25) as polling:
        assert polling.join(timeout=60), "polling never saw the batch finish"
    socket.wait_for_terminal(timeout=30)
    assert polling.report().final_state == socket.report().final_state, (
        "the status endpoint and the socket disagree on the final state (seq included)"
    )


@pytest.mark.parametrize(
    ("send", "code"),
    [
        pytest.param(["x" * 4097], 1009, id="one message over 4 KiB"),
        pytest.param(['{"type":"ping"}'] * 100, 1008, id="100 messages at once"),
    ],
)
def test_abusive_client_messages_close_the_socket(
    send: list[str], code: int, shared_api: BatchApi, base_url: str
) -> None:
    batch = upload(shared_api, 2)
    bearer = {"Authorization": f"Bearer {shared_api.token}"}
    outcome = probe_socket(base_url, batch, headers=bearer, send=send, timeout=15)
    assert outcome.close_code == code, f"socket limit promise broken: expected close {code}, got {outcome}"
    again = probe_socket(base_url, batch, headers=bearer, until_messages=1)
    assert again.first is not None and again.first["type"] == "snapshot", "the server must stay up for others"
