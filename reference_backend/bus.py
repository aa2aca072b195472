"""Progress fan-out: every stored batch event is published to whoever listens in this process.

The publisher interface is small on purpose, so a Redis pub/sub publisher can stand in for
``LocalBus`` when several API processes serve sockets.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from typing import Any, Protocol

log = logging.getLogger(__name__)


class EventPublisher(Protocol):
    def publish(self, batch_id: str, event: dict[str, Any]) -> None: ...


class Bus(EventPublisher, Protocol):
    """What sockets need: ``LocalBus`` in one process, ``RedisBus`` across processes."""

    def bind(self, loop: asyncio.AbstractEventLoop) -> None: ...

    def subscribe(self, batch_id: str) -> asyncio.Queue[dict[str, Any]]: ...

    def unsubscribe(self, batch_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None: ...

    def subscriber_count(self) -> int: ...


class LocalBus:
    """In-process fan-out. ``publish`` is safe to call from any thread.

    One ``call_soon_threadsafe`` per event, not per subscriber: with a thousand sockets on one batch
    that is one wake-up of the loop instead of a thousand, and events reach every queue in the order
    they were published.
    """

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, batch_id: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        with self._lock:
            self._subscribers[batch_id].add(queue)
        return queue

    def unsubscribe(self, batch_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        with self._lock:
            queues = self._subscribers.get(batch_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._subscribers[batch_id]

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._subscribers.values())

    def publish(self, batch_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            listening = batch_id in self._subscribers
        if not listening or self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._deliver, batch_id, event)
        except RuntimeError:  # the loop closed under us (shutdown); nobody is left to hear it
            log.debug("dropped an event for batch %s: the loop is closed", batch_id)

    def _deliver(self, batch_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            queues = list(self._subscribers.get(batch_id, ()))
        for queue in queues:
            queue.put_nowait(event)
