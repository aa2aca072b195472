"""Progress fan-out in one API process: one feed per watched batch, whatever the number of its sockets.

A ``BatchFeed`` is the bus's only subscriber for its batch. It wakes once per event, makes the send
decisions once (``ProgressStream``: coalescing, coverage, heartbeats), encodes and frames each
message once, and writes the same bytes to every socket of the batch. A socket costs a seq check
and one transport write per message; it has no task or queue of its own, so an event that is
coalesced away wakes nothing per socket. Servers without the pre-framed extension
(``ws_protocol.py``) get the same messages through plain ASGI, one small queue per socket.

Joining is where gaps could hide: a socket registers first (broadcasts are then kept for it), reads
its opening from storage, and on admission gets the opening followed by what was kept, minus what
the opening already covered. The feed seeds itself from the first opening's status view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import faults
from .bus import Bus
from .database import Store
from .progress_stream import ADVANCING_TYPES, ProgressStream, encode, stored_events_after
from .ws_protocol import MAX_UNREAD_BYTES, PREFRAMED, text_frame

log = logging.getLogger(__name__)

Message = dict[str, Any]
# A message and when the stream decided to send it (its server_time).
Decided = tuple[Message, datetime]
# A message ready to go: (seq, is advancing, text, frame); the frame is None without the extension.
Outgoing = tuple[int, bool, str, bytes | None]

TOO_SLOW = 1013  # "try again later": the client left too much unread; it resumes with last_seq
INTERNAL_ERROR = 1011


class Subscriber:
    """One socket of a feed: how far it has been shown (``seq``) and how to reach it."""

    __slots__ = ("_close", "_drain", "_queue", "_write", "early", "kept", "seq", "websocket")

    def __init__(self, websocket: WebSocket) -> None:
        preframed = websocket.scope.get("extensions", {}).get(PREFRAMED)
        # A pre-framed socket is reached through its protocol alone: holding the ``WebSocket`` would keep
        # the scope, and the ASGI task's objects, alive after the route detached it.
        self.websocket: WebSocket | None = None if preframed is not None else websocket
        self.seq = 0
        self.kept: list[Outgoing] | None = []  # broadcasts while joining; None once admitted
        self.early = False  # joined before the feed started: its opening may predate the feed's start
        self._write: Callable[[bytes], bool] | None = preframed.write if preframed is not None else None
        self._close: Callable[[int, str], None] | None = preframed.close if preframed is not None else None
        self._queue: asyncio.Queue[str] | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def preframed(self) -> bool:
        return self._write is not None

    def send(self, text: str, frame: bytes | None) -> bool:
        """Hand one message to the socket without waiting; False when it cannot take it."""
        if self._write is not None:
            return self._write(frame if frame is not None else text_frame(text))
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._drain = asyncio.create_task(self._send_queued(), name="batchqa-socket-send")
        self._queue.put_nowait(text)
        return True

    async def _send_queued(self) -> None:
        assert self._queue is not None and self.websocket is not None
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client left; the route ends it
            while True:
                await self.websocket.send_text(await self._queue.get())

    def close(self, code: int, reason: str) -> None:
        """Close from outside the socket's own task; it sees a disconnect and leaves the feed."""
        if self._close is not None:
            self._close(code, reason)
        elif self.websocket is not None:
            asyncio.get_running_loop().create_task(self.websocket.close(code, reason))

    def stop(self) -> None:
        if self._drain is not None:
            self._drain.cancel()


class BatchFeed:
    """Every socket of one batch in this process, fed from one bus subscription."""

    def __init__(
        self,
        batch_id: str,
        *,
        bus: Bus,
        store: Store,
        stream: ProgressStream,
        on_empty: Callable[[BatchFeed], None],
        on_sent: Callable[[Message], None] | None = None,
    ) -> None:
        self.batch_id = batch_id
        self.on_sent = on_sent
        self.bus = bus
        self.store = store
        self.stream = stream
        self.on_empty = on_empty
        self.subscribers: dict[Subscriber, None] = {}  # admitted, in join order
        self.joining: set[Subscriber] = set()
        self._queue = bus.subscribe(batch_id)  # before any storage read, so no event falls in between
        self.start_seq = 0
        self._task: asyncio.Task[None] | None = None

    def join(self, websocket: WebSocket) -> Subscriber:
        """Register a socket before its opening is read: what is broadcast meanwhile is kept for it."""
        subscriber = Subscriber(websocket)
        subscriber.early = not self.stream.started
        self.joining.add(subscriber)
        return subscriber

    def owed(self, subscriber: Subscriber, covered: int) -> int | None:
        """The seq up to which a joining socket must read more from storage before ``admit``, if any.

        The feed starts at the state another socket read; a socket that joined before that and read
        an older state is owed the events in between (nothing was broadcast for them).
        """
        if subscriber.early and self.stream.started and covered < self.start_seq:
            return self.start_seq
        return None

    def admit(self, subscriber: Subscriber, view: Message, opening: list[Message], covered: int) -> None:
        """Send the opening, then what was kept that the opening did not cover, then go live (no await)."""
        self.joining.discard(subscriber)
        if not self.stream.started:
            self.stream.start(view, time.monotonic())
            self.start_seq = view["seq"]
            self._task = asyncio.create_task(self._run(), name=f"batchqa-feed-{self.batch_id[:8]}")
        stamp = datetime.now(UTC)
        kept, subscriber.kept = subscriber.kept or [], None
        subscriber.seq = covered
        for message in opening:
            if not subscriber.send(encode(message, stamp), None):
                subscriber.close(TOO_SLOW, "client too slow; reconnect with last_seq")
                return
        for outgoing in kept:
            if not self._deliver(subscriber, outgoing):
                subscriber.close(TOO_SLOW, "client too slow; reconnect with last_seq")
                return
        self.subscribers[subscriber] = None

    def leave(self, subscriber: Subscriber) -> None:
        subscriber.stop()
        self.joining.discard(subscriber)
        self.subscribers.pop(subscriber, None)
        if not self.subscribers and not self.joining:
            if self._task is not None:
                self._task.cancel()
            self.bus.unsubscribe(self.batch_id, self._queue)
            self.on_empty(self)

    def broadcast(self, messages: list[Decided]) -> None:
        """Encode and frame each message once, stamped with when it was decided; every socket gets the same bytes."""
        if not messages:
            return
        preframed = any(s.preframed for s in self.subscribers) or any(s.preframed for s in self.joining)
        for message, stamp in messages:
            text = encode(message, stamp)
            frame = text_frame(text) if preframed else None
            outgoing = (message["seq"], message["type"] in ADVANCING_TYPES, text, frame)
            for subscriber in self.joining:
                assert subscriber.kept is not None
                subscriber.kept.append(outgoing)
            dropped = [s for s in self.subscribers if not self._deliver(s, outgoing)]
            for subscriber in dropped:
                log.info("a progress socket on %s left %d KiB unread: closed", self.batch_id, MAX_UNREAD_BYTES // 1024)
                del self.subscribers[subscriber]
                subscriber.close(TOO_SLOW, "client too slow; reconnect with last_seq")

    @staticmethod
    def _deliver(subscriber: Subscriber, outgoing: Outgoing) -> bool:
        seq, advancing, text, frame = outgoing
        if advancing:
            if seq <= subscriber.seq:
                return True  # its opening already covered this
            subscriber.seq = seq
        elif seq != subscriber.seq:
            return True  # a heartbeat for sockets that have been shown exactly this seq
        return subscriber.send(text, frame)

    async def _run(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the progress feed of batch %s failed; its sockets are closed to reconnect", self.batch_id)
            for subscriber in [*self.subscribers, *self.joining]:
                subscriber.close(INTERNAL_ERROR, "server error")

    async def _loop(self) -> None:
        stream, queue = self.stream, self._queue
        while True:
            events: list[Message] = []
            wait = stream.next_deadline() - time.monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        events.append(await queue.get())
            while not queue.empty():  # a backlog is coalesced in one pass
                events.append(queue.get_nowait())
            events.sort(key=lambda e: e["seq"])  # publishers on several threads may cross
            out: list[Decided] = []
            for event in events:
                if stream.needs_backfill(event):
                    # Seqs are assigned under the batch's row lock and published after commit: the
                    # missing ones are stored already.
                    stored = await run_in_threadpool(self._events_after, stream.received, event["seq"])
                    for missing in stored:
                        out.extend(_decide(lambda now, e=missing: stream.offer(e, now)))
                out.extend(_decide(lambda now, e=event: stream.offer(e, now)))
            out.extend(_decide(stream.due))
            out = [(m, at) for m, at in out if not _silenced(m)]
            if self.on_sent is not None:
                for message, _at in out:
                    self.on_sent(message)
            self.broadcast(out)

    def _events_after(self, after_seq: int, before_seq: int) -> list[Message]:
        with self.store.read() as session:
            return [e for e in stored_events_after(session, self.batch_id, after_seq) if e["seq"] < before_seq]


def _decide(decide: Callable[[float], list[Message]]) -> list[Decided]:
    """The messages a decision of the stream sends, each with the wall-clock time of that decision: its
    ``server_time``, so a pass that awaits a backfill or waits for the CPU before sending does not move the stamps
    closer together than the decisions were."""
    wall, now = datetime.now(UTC), time.monotonic()
    return [(message, wall) for message in decide(now)]


def _silenced(message: Message) -> bool:
    paused_heartbeat = message["type"] == "heartbeat" and message.get("status") == "paused"
    return paused_heartbeat and faults.on("no_heartbeat_when_paused")


class FeedRegistry:
    """The feeds of one app, created on a batch's first socket and dropped after its last."""

    def __init__(
        self,
        *,
        bus: Bus,
        store: Store,
        coalesce_s: float,
        heartbeat_s: float,
        on_sent: Callable[[Message], None] | None = None,
    ) -> None:
        self.on_sent = on_sent
        self.bus = bus
        self.store = store
        self.coalesce_s = coalesce_s
        self.heartbeat_s = heartbeat_s
        self.feeds: dict[str, BatchFeed] = {}

    def feed(self, batch_id: str) -> BatchFeed:
        feed = self.feeds.get(batch_id)
        if feed is None:
            stream = ProgressStream(coalesce_s=self.coalesce_s, heartbeat_s=self.heartbeat_s)
            feed = BatchFeed(
                batch_id, bus=self.bus, store=self.store, stream=stream, on_empty=self._drop, on_sent=self.on_sent
            )
            self.feeds[batch_id] = feed
        return feed

    def _drop(self, feed: BatchFeed) -> None:
        if self.feeds.get(feed.batch_id) is feed:
            del self.feeds[feed.batch_id]

    def socket_count(self) -> int:
        return sum(len(f.subscribers) + len(f.joining) for f in self.feeds.values())
