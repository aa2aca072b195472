"""Progress fan-out across processes: events go out on Redis pub/sub and reach local sockets in seq order.

``RedisBus`` has ``LocalBus``'s interface (``bind``, ``subscribe``, ``unsubscribe``, ``publish``), so
the socket handler does not know which one it has. Whichever process stores an event (a worker, or
an API process acting on pause/cancel) publishes it on ``batchqa:events:<batch_id>``; every API
process subscribes to all of them and delivers to its own subscribers, one per watched batch (the
batch's feed, ``fanout.py``, which writes to all of that batch's sockets). Pub/sub is the fast path only:

- each batch's events are delivered in ``seq`` order, without duplicates; a gap (two processes'
  messages crossing, or one lost) is filled from the ``events`` table before the later event;
- after Redis comes back, and every ``reconcile_seconds`` anyway, a watched batch whose stored seq
  is ahead of what its sockets got is caught up from the database.

So a socket sees every event whichever process produced it, through a Redis restart included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import defaultdict
from typing import Any

from sqlalchemy import select

from .database import Store
from .models import Batch, Event
from .redis_pubsub import RedisOutbox, listen_forever

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "batchqa:events:"

Message = dict[str, Any]


class RedisPublisher:
    """The ``EventPublisher`` of a worker process: each event goes out on its batch's channel."""

    def __init__(self, outbox: RedisOutbox) -> None:
        self.outbox = outbox

    def publish(self, batch_id: str, event: Message) -> None:
        self.outbox.send(CHANNEL_PREFIX + batch_id, json.dumps(event))


class RedisBus:
    """Fan-out for an API process: publish to Redis, deliver from Redis (and this process) to local queues."""

    def __init__(self, url: str, *, store: Store | None, reconcile_seconds: float = 1.0) -> None:
        self.url = url
        self.outbox = RedisOutbox(url)
        self.reconcile_seconds = reconcile_seconds
        self._publisher = RedisPublisher(self.outbox)
        self._store = store
        self._subscribers: dict[str, set[asyncio.Queue[Message]]] = defaultdict(set)
        self._delivered: dict[str, int | None] = {}  # per watched batch: the last seq handed to its queues
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[tuple[str, Message]] | None = None
        self._reconcile_now: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    async def start(self) -> None:
        """Start listening (call on the loop passed to ``bind``)."""
        self._loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        self._reconcile_now = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._dispatch(), name="batchqa-bus-dispatch"),
            asyncio.create_task(self._reconcile(), name="batchqa-bus-reconcile"),
            asyncio.create_task(
                listen_forever(
                    self.url,
                    CHANNEL_PREFIX + "*",
                    pattern=True,
                    on_message=self._on_redis_message,
                    on_connect=self._reconcile_now.set,
                ),
                name="batchqa-bus-listen",
            ),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await asyncio.to_thread(self.outbox.close)

    def subscribe(self, batch_id: str) -> asyncio.Queue[Message]:
        """A queue of this batch's events from now on, in seq order.

        The first subscriber of a batch reads the batch's current seq *before* returning, so events
        the caller then replays from the database and the ones this bus delivers leave no gap.
        """
        queue: asyncio.Queue[Message] = asyncio.Queue()
        with self._lock:
            first = not self._subscribers[batch_id]
            self._subscribers[batch_id].add(queue)
        if first:
            seq = self._current_seq(batch_id)
            with self._lock:
                self._delivered.setdefault(batch_id, seq)
        return queue

    def unsubscribe(self, batch_id: str, queue: asyncio.Queue[Message]) -> None:
        with self._lock:
            queues = self._subscribers.get(batch_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._subscribers[batch_id]
                    self._delivered.pop(batch_id, None)

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._subscribers.values())

    def publish(self, batch_id: str, event: Message) -> None:
        """Send to every process; this process's sockets get it directly too (duplicates are dropped by seq)."""
        self._publisher.publish(batch_id, event)
        with self._lock:
            local = bool(self._subscribers.get(batch_id))
        if local and self._loop is not None and self._inbox is not None:
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, (batch_id, event))

    def _on_redis_message(self, channel: str, data: bytes) -> None:
        batch_id = channel.removeprefix(CHANNEL_PREFIX)
        with self._lock:
            if not self._subscribers.get(batch_id):
                return
        try:
            event = json.loads(data)
        except ValueError:
            log.warning("ignoring a malformed event on %s", channel)
            return
        if self._inbox is not None:
            self._inbox.put_nowait((batch_id, event))

    async def _dispatch(self) -> None:
        assert self._inbox is not None
        while True:
            batch_id, event = await self._inbox.get()
            try:
                await self._deliver(batch_id, event)
            except Exception:
                log.exception("delivering an event of batch %s failed", batch_id)

    async def _deliver(self, batch_id: str, event: Message) -> None:
        seq = event.get("seq")
        with self._lock:
            watched = bool(self._subscribers.get(batch_id))
            last = self._delivered.get(batch_id)
        if not watched:
            return
        if isinstance(seq, int) and last is not None:
            if seq <= last:
                return  # already delivered (the local copy, a replayed copy, or a catch-up)
            if seq > last + 1 and self._store is not None:
                # Seqs are assigned under the batch's row lock, so every earlier one is already stored.
                for missing in await asyncio.to_thread(self._stored_events, batch_id, last, seq):
                    self._fan_out(batch_id, missing)
        self._fan_out(batch_id, event)

    def _fan_out(self, batch_id: str, event: Message) -> None:
        seq = event.get("seq")
        with self._lock:
            queues = list(self._subscribers.get(batch_id, ()))
            last = self._delivered.get(batch_id)
            if isinstance(seq, int):
                if last is not None and seq <= last:
                    return
                if queues:
                    self._delivered[batch_id] = seq
        for queue in queues:
            queue.put_nowait(event)

    async def _reconcile(self) -> None:
        assert self._reconcile_now is not None and self._inbox is not None
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that arrives as its
            # timeout fires, and then close() waits for ever for this loop to end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.reconcile_seconds):
                    await self._reconcile_now.wait()
            self._reconcile_now.clear()
            with self._lock:
                watched = {b: s for b, s in self._delivered.items() if s is not None and self._subscribers.get(b)}
            if not watched or self._store is None:
                continue
            try:
                behind = await asyncio.to_thread(self._catch_up, watched)
            except Exception:
                log.warning("catching sockets up from the database failed", exc_info=True)
                continue
            for batch_id, event in behind:
                self._inbox.put_nowait((batch_id, event))

    def _current_seq(self, batch_id: str) -> int | None:
        if self._store is None:
            return None
        try:
            with self._store.read() as session:
                return session.scalar(select(Batch.seq).where(Batch.id == batch_id))
        except Exception:
            log.warning("reading the seq of batch %s failed; delivering from its next event", batch_id)
            return None

    def _stored_events(self, batch_id: str, after: int, before: int | None = None) -> list[Message]:
        assert self._store is not None
        query = select(Event.payload).where(Event.batch_id == batch_id, Event.seq > after).order_by(Event.seq)
        if before is not None:
            query = query.where(Event.seq < before)
        with self._store.read() as session:
            return [dict(payload) for payload in session.scalars(query)]

    def _catch_up(self, watched: dict[str, int]) -> list[tuple[str, Message]]:
        assert self._store is not None
        with self._store.read() as session:
            stored = dict(session.execute(select(Batch.id, Batch.seq).where(Batch.id.in_(list(watched)))).all())
        behind = [batch_id for batch_id, seq in stored.items() if seq > watched[batch_id]]
        return [(batch_id, event) for batch_id in behind for event in self._stored_events(batch_id, watched[batch_id])]
