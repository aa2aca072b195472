"""Unit tests of the progress socket's decisions (openings, coalescing, coverage, heartbeats) and admission rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from reference_backend.progress_stream import (
    ProgressStream,
    covered_seq,
    encode,
    event_message,
    opening_messages,
)
from reference_backend.routes.sockets import InboundGuard, normalise_origin, origin_allowed
from utilities.client.progress_messages import message_problems

pytestmark = pytest.mark.area("Progress WebSocket")
COALESCE_S = 0.25
HEARTBEAT_S = 1.0


def view(seq: int, processed: int = 0, *, status: str = "running", total: int = 10) -> dict[str, Any]:
    """A status body (what ``status_view`` returns) at ``seq``."""
    return {
        "batch_id": "b1",
        "status": status,
        "filename": None,
        "total": total,
        "processed": processed,
        "succeeded": processed,
        "failed": 0,
        "cancelled": 0,
        "percent": round(100 * processed / total, 1),
        "eta_seconds": None,
        "seq": seq,
        "created_at": "2025-01-01T00:00:00Z",
        "started_at": "2025-01-01T00:00:00Z",
        "finished_at": None,
        "updated_at": f"2025-01-01T00:00:{seq:02d}Z",
    }


def event(seq: int, processed: int = 0, *, kind: str = "progress", status: str = "running") -> dict[str, Any]:
    """A stored event as ``record_event`` makes it."""
    return {"type": kind, **view(seq, processed, status=status), "event_time": f"2025-01-01T00:00:{seq:02d}.5Z"}


@pytest.fixture
def stream() -> ProgressStream:
    return ProgressStream(coalesce_s=COALESCE_S, heartbeat_s=HEARTBEAT_S)


def started(stream: ProgressStream, seq: int, processed: int = 0, *, status: str = "running") -> ProgressStream:
    stream.start(view(seq, processed, status=status), now=0.0)
    return stream


def sent(messages: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """(type, from_seq, seq) of each message: what it is and which events it covers."""
    return [(m["type"], m["from_seq"], m["seq"]) for m in messages]


def test_a_fresh_connection_opens_with_a_snapshot_covering_the_whole_history() -> None:
    opening = opening_messages(view(4, 3), last_seq=None, stored=[])
    assert sent(opening) == [("snapshot", 1, 4)]
    assert opening[0]["event_time"] == "2025-01-01T00:00:04Z", "a snapshot's event is the batch's latest"
    assert opening[0]["processed"] == 3 and "filename" not in opening[0]
    assert covered_seq(opening, None) == 4


def test_a_resumed_connection_replays_every_stored_event_after_last_seq() -> None:
    stored = [event(s, s) for s in (5, 3, 4, 6)]  # storage order is not trusted
    opening = opening_messages(view(6, 6), last_seq=3, stored=stored)
    assert sent(opening) == [("progress", 4, 4), ("progress", 5, 5), ("progress", 6, 6)], "each alone, in order"
    assert covered_seq(opening, 3) == 6
    assert opening_messages(view(3, 3), last_seq=3, stored=[]) == [], "nothing new: nothing to send yet"
    assert covered_seq([], 3) == 3


def test_a_last_seq_beyond_the_batch_gets_a_snapshot_to_start_over() -> None:
    assert sent(opening_messages(view(3), last_seq=50, stored=[])) == [("snapshot", 1, 3)]


def test_first_progress_after_a_quiet_window_goes_out_at_once(stream: ProgressStream) -> None:
    started(stream, 2)
    assert sent(stream.offer(event(3, 1), now=0.3)) == [("progress", 3, 3)]


def test_progress_inside_the_window_is_held_and_the_newest_covers_what_it_replaced(stream: ProgressStream) -> None:
    started(stream, 2)
    stream.offer(event(3, 1), now=1.0)
    assert stream.offer(event(4, 2), now=1.05) == []
    assert stream.offer(event(5, 3), now=1.10) == []
    assert stream.next_deadline() == pytest.approx(1.0 + COALESCE_S)
    assert stream.due(now=1.2) == [], "the window is not over yet"
    flushed = stream.due(now=1.0 + COALESCE_S)
    assert sent(flushed) == [("progress", 4, 5)] and flushed[0]["processed"] == 3
    assert stream.due(now=1.3) == []


def test_a_status_event_goes_at_once_and_covers_the_held_progress(stream: ProgressStream) -> None:
    started(stream, 2)
    stream.offer(event(3, 1), now=1.0)
    stream.offer(event(4, 2), now=1.1)
    assert sent(stream.offer(event(5, 2, kind="status", status="paused"), now=1.15)) == [("status", 4, 5)]
    assert stream.due(now=1.5) == [], "the held progress (seq 4) went out inside the status"


def test_stale_and_repeated_events_are_dropped(stream: ProgressStream) -> None:
    started(stream, 6)
    assert stream.offer(event(5), now=1.0) == [], "older than the start"
    assert stream.offer(event(6), now=1.0) == [], "the start already covered seq 6"
    assert sent(stream.offer(event(7), now=1.0)) == [("progress", 7, 7)]
    stream.offer(event(8), now=1.1)
    assert stream.offer(event(8), now=1.12) == [], "a repeat of the held one"
    assert sent(stream.due(now=1.25)) == [("progress", 8, 8)]


def test_a_hole_asks_for_a_backfill_and_an_unfilled_one_stays_visible(stream: ProgressStream) -> None:
    started(stream, 2)
    assert not stream.needs_backfill(event(3))
    assert stream.needs_backfill(event(5)), "seqs 3 and 4 were never taken in: read them from storage"
    stream.offer(event(3), now=1.0)
    stream.offer(event(4), now=1.05)  # held
    # The caller could not fill 5..6: the held range goes out alone, and 7 covers only itself.
    out = stream.offer(event(7, kind="status", status="paused"), now=1.1)
    assert sent(out) == [("progress", 4, 4), ("status", 7, 7)]


def test_a_heartbeat_repeats_the_last_state_and_covers_nothing_new(stream: ProgressStream) -> None:
    started(stream, 3, 2, status="paused")
    assert stream.next_deadline() == pytest.approx(HEARTBEAT_S)
    assert stream.due(now=0.99) == []
    beat = stream.due(now=1.0)
    assert sent(beat) == [("heartbeat", 3, 3)]
    assert (beat[0]["status"], beat[0]["processed"]) == ("paused", 2)
    assert stream.next_deadline() == pytest.approx(2.0), "heartbeats keep coming while nothing happens"
    assert sent(stream.due(now=2.0)) == [("heartbeat", 3, 3)]


def test_heartbeats_continue_after_the_terminal_event(stream: ProgressStream) -> None:
    started(stream, 3)
    stream.offer(event(4, 10, kind="completed", status="completed"), now=0.5)
    assert sent(stream.due(now=1.5)) == [("heartbeat", 4, 4)]
    assert sent(stream.due(now=2.5)) == [("heartbeat", 4, 4)]


def test_nothing_is_sent_before_the_stream_starts(stream: ProgressStream) -> None:
    assert stream.offer(event(3), now=0.0) == [] and stream.due(now=5.0) == []


def test_without_coalescing_every_progress_event_is_sent() -> None:
    stream = started(ProgressStream(coalesce_s=0, heartbeat_s=HEARTBEAT_S), 1)
    assert [m["seq"] for s in (2, 3, 4) for m in stream.offer(event(s), now=0.0)] == [2, 3, 4]


def test_encoded_messages_carry_server_time_and_match_their_schema() -> None:
    at = datetime(2025, 1, 1, 0, 0, 7, 250000, tzinfo=UTC)
    progress = json.loads(encode(event_message(event(7, 5), from_seq=5), now=at))
    assert progress["server_time"] == "2025-01-01T00:00:07.250000Z"
    assert progress["event_time"] == "2025-01-01T00:00:07.5Z"
    assert (progress["from_seq"], progress["seq"]) == (5, 7)
    assert message_problems(progress) == []
    beat = json.loads(encode({**event_message(event(7, 5)), "type": "heartbeat"}, now=at))
    assert beat["event_time"] == beat["server_time"]
    assert message_problems(beat) == []
    snapshot = opening_messages(view(7, 5), last_seq=None, stored=[])[0]
    assert message_problems(json.loads(encode(snapshot, now=at))) == []


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("http://127.0.0.1:8000", True),
        ("HTTP://127.0.0.1:8000/", True),
        ("https://app.example.test", True),
        ("https://app.example.test:443", True),
        ("http://127.0.0.1:8001", False),
        ("https://evil.example.test", False),
        ("null", False),
        ("not a url", False),
    ],
    ids=lambda v: str(v),
)
def test_origin_is_absent_our_own_or_configured(origin: str | None, allowed: bool) -> None:
    own = ["http://127.0.0.1:8000"]
    assert origin_allowed(origin, own=own, allowed=["https://app.example.test"]) is allowed


def test_origins_are_compared_without_default_ports_or_case() -> None:
    assert normalise_origin("HTTPS://Example.TEST:443") == "https://example.test"
    assert normalise_origin("http://[::1]:8000") == "http://[::1]:8000"
    assert normalise_origin("ftp://example.test") is None


def test_guard_closes_1009_on_an_oversized_message() -> None:
    guard = InboundGuard(max_bytes=4096, max_per_second=20)
    assert guard.check(4096, now=0.0) is None
    refusal = guard.check(4097, now=0.0)
    assert refusal is not None and refusal.code == 1009


def test_guard_allows_twenty_messages_a_second_and_closes_1008_on_the_twenty_first() -> None:
    guard = InboundGuard(max_bytes=4096, max_per_second=20)
    assert all(guard.check(10, now=i * 0.051) is None for i in range(60)), "a steady 19.6/s is allowed"
    burst = InboundGuard(max_bytes=4096, max_per_second=20)
    results = [burst.check(10, now=0.5 + i * 0.001) for i in range(21)]
    assert results[:20] == [None] * 20
    assert results[20] is not None and results[20].code == 1008
