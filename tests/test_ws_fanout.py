"""The per-batch feed on fake pre-framed sockets: joining without a gap, ordering, backfill, slow clients, cleanup."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from reference_backend.bus import LocalBus
from reference_backend.fanout import TOO_SLOW, BatchFeed, FeedRegistry
from reference_backend.progress_stream import covered_seq, opening_messages
from reference_backend.ws_protocol import PREFRAMED
from utilities.client.progress_messages import parse_time

from .test_ws_progress_stream import event, view

pytestmark = pytest.mark.area("Progress WebSocket")


class FakeSocket:
    """Stands in for a connection with the pre-framed extension: keeps what is written, or refuses it."""

    def __init__(self, *, accepts: bool = True) -> None:
        self.accepts = accepts
        self.frames: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.scope = {"extensions": {PREFRAMED: self}}

    def write(self, frame: bytes) -> bool:
        if self.accepts:
            self.frames.append(frame)
        return self.accepts

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def messages(self) -> list[dict[str, Any]]:
        """Every message written, decoded from its frame."""
        out = []
        for frame in self.frames:
            assert frame[0] == 0x81, "one final text frame per message"
            length, offset = frame[1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(frame[2:4], "big"), 4
            out.append(json.loads(frame[offset : offset + length]))
        return out

    def sent(self) -> list[tuple[str, int, int]]:
        """(type, from_seq, seq) of every message written."""
        return [(m["type"], m["from_seq"], m["seq"]) for m in self.messages()]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)  # yields to the feed's task; the poll interval, not a synchronisation


def registry(bus: LocalBus, *, coalesce_s: float = 0.25) -> FeedRegistry:
    bus.bind(asyncio.get_running_loop())
    return FeedRegistry(bus=bus, store=None, coalesce_s=coalesce_s, heartbeat_s=30.0)  # type: ignore[arg-type]


def admit(feed: BatchFeed, socket: FakeSocket, seq: int, *, last_seq: int | None = None, stored: Any = ()) -> None:
    subscriber = feed.join(socket)  # type: ignore[arg-type]
    opening = opening_messages(view(seq), last_seq=last_seq, stored=stored)
    feed.admit(subscriber, view(seq), opening, covered_seq(opening, last_seq))


def test_a_socket_joining_during_broadcasts_gets_its_opening_then_only_what_it_lacks() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        feed = registry(bus).feed("b1")
        early, late = FakeSocket(), FakeSocket()
        admit(feed, early, 5)
        joining = feed.join(late)  # type: ignore[arg-type]
        bus.publish("b1", event(6))
        bus.publish("b1", event(7, kind="status", status="paused"))
        await until(lambda: len(early.frames) == 3)
        # The late socket's storage read saw seq 6: its snapshot covers it; only 7 is still owed.
        opening = opening_messages(view(6), last_seq=None, stored=[])
        feed.admit(joining, view(6), opening, covered_seq(opening, None))
        assert early.sent() == [("snapshot", 1, 5), ("progress", 6, 6), ("status", 7, 7)]
        assert late.sent() == [("snapshot", 1, 6), ("status", 7, 7)]
        assert early.frames[-1] == late.frames[-1], "one frame, the same bytes for every socket"

    asyncio.run(scenario())


def test_events_that_cross_on_the_bus_are_ordered_and_a_hole_is_read_from_storage() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        feed = registry(bus, coalesce_s=0).feed("b1")
        reads: list[tuple[int, int]] = []

        def stored(after: int, before: int) -> list[dict[str, Any]]:
            reads.append((after, before))
            return [event(s) for s in range(after + 1, before)]

        feed._events_after = stored  # type: ignore[method-assign]
        socket = FakeSocket()
        admit(feed, socket, 5)
        bus.publish("b1", event(9))  # 6..8 never came over the bus
        await until(lambda: len(socket.frames) == 5)
        assert socket.sent()[1:] == [("progress", s, s) for s in (6, 7, 8, 9)]
        assert reads == [(5, 9)]

    asyncio.run(scenario())


def test_a_message_is_stamped_when_it_was_decided_not_when_the_pass_that_decided_it_ends() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        feed = registry(bus, coalesce_s=0).feed("b1")

        def slow_read(after: int, before: int) -> list[dict[str, Any]]:
            time.sleep(0.3)  # the backfill's read, in the thread pool: the pass awaits it
            return [event(s) for s in range(after + 1, before)]

        feed._events_after = slow_read  # type: ignore[method-assign]
        socket = FakeSocket()
        admit(feed, socket, 5)
        bus.publish("b1", event(6))  # sent at once ...
        bus.publish("b1", event(9))  # ... in the same pass as the read 7..8 that 9 waits for
        await until(lambda: len(socket.frames) == 5)
        sent = socket.messages()[1:]
        assert [m["seq"] for m in sent] == [6, 7, 8, 9]
        stamps = [parse_time(m["server_time"]) or 0.0 for m in sent]
        assert stamps[1] - stamps[0] >= 0.3, f"6 was stamped when the pass ended, not when it was decided: {stamps}"

    asyncio.run(scenario())


def test_a_client_that_reads_nothing_is_closed_and_the_others_go_on() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        feed = registry(bus).feed("b1")
        stuck, fine = FakeSocket(), FakeSocket()
        admit(feed, stuck, 5)
        admit(feed, fine, 5)
        stuck.accepts = False
        bus.publish("b1", event(6))
        await until(lambda: len(fine.frames) == 2)
        assert stuck.closed is not None and stuck.closed[0] == TOO_SLOW
        assert len(feed.subscribers) == 1

    asyncio.run(scenario())


def test_the_last_socket_leaving_drops_the_feed_and_its_bus_subscription() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        feeds = registry(bus)
        feed = feeds.feed("b1")
        subscriber = feed.join(FakeSocket())  # type: ignore[arg-type]
        assert bus.subscriber_count() == 1, "one subscription per batch, whatever the number of sockets"
        feed.leave(subscriber)
        assert feeds.feeds == {} and bus.subscriber_count() == 0

    asyncio.run(scenario())


def test_a_socket_that_read_an_older_state_than_the_feed_started_from_is_owed_the_events_between() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        feed = registry(bus).feed("b1")
        slow_reader, quick_reader = FakeSocket(), FakeSocket()
        slow = feed.join(slow_reader)  # type: ignore[arg-type]
        admit(feed, quick_reader, 10)  # joined later, read seq 10 first: the feed starts there
        assert feed.owed(slow, 9) == 10, "seq 10 was never broadcast: the slow reader must read it"
        opening = [
            *opening_messages(view(9), last_seq=None, stored=[]),
            *opening_messages(view(10), last_seq=9, stored=[event(10)]),
        ]
        feed.admit(slow, view(9), opening, covered_seq(opening, None))
        bus.publish("b1", event(11))
        await until(lambda: len(slow_reader.frames) == 3)
        assert slow_reader.sent() == [("snapshot", 1, 9), ("progress", 10, 10), ("progress", 11, 11)]
        assert feed.owed(feed.join(FakeSocket()), 3) is None, "a socket joining a running feed keeps broadcasts"  # type: ignore[arg-type]

    asyncio.run(scenario())
