"""Redis in distributed mode: a non-blocking outbox, a self-healing subscription and the workers' doorbell.

Redis carries no state that correctness depends on. The rows table is the queue (claims under a
lease, writes fenced by the attempt), so Redis only makes things *fast*: a ring on ``batchqa:work``
wakes idle workers at once instead of at their next poll, and progress events reach every API
process (``redis_bus.py``). Losing Redis, or its last second of AOF, costs latency, never a row:
workers keep polling the database and sockets catch up from the stored events.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from types import ModuleType

log = logging.getLogger(__name__)

WORK_CHANNEL = "batchqa:work"
RECONNECT_SECONDS = 0.2


def _redis() -> ModuleType:
    """Redis's client, imported where distributed mode uses it: embedded mode runs without the extra."""
    try:
        import redis
        import redis.asyncio
        import redis.asyncio.retry
        import redis.backoff
        import redis.retry
    except ImportError as exc:
        raise ImportError(f"{exc}: distributed mode needs the client, pip install 'batchqa[distributed]'") from exc
    return redis


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    user, colon, _password = credentials.partition(":")
    if not at or not colon:
        return url
    return f"{scheme}{sep}{user}:***@{host}"


class RedisOutbox:
    """``send`` from any thread without blocking it; a daemon thread publishes in order.

    Through a short outage (a Redis restart) a message is retried; once the outage is longer than
    ``retry_seconds`` messages are dropped, since every event is also stored and subscribers catch up
    from the database.
    """

    def __init__(self, url: str, *, retry_seconds: float = 10.0) -> None:
        redis = _redis()
        # No client-side retries: this loop decides, so one failing message cannot hold the thread for long.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        )
        self._errors = (redis.RedisError, OSError)
        self.retry_seconds = retry_seconds
        self.dropped = 0
        self._queue: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._down_since: float | None = None

    def send(self, channel: str, payload: str) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="batchqa-redis-outbox", daemon=True)
                    self._thread.start()
        self._queue.put((channel, payload))

    def close(self, timeout: float = 2.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
        self._client.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self._publish(*item)

    def _publish(self, channel: str, payload: str) -> None:
        delay = 0.05
        while True:
            try:
                self._client.publish(channel, payload)
            except self._errors as exc:
                now = time.monotonic()
                if self._down_since is None:
                    self._down_since = now
                    log.warning("publishing to Redis failed (%s); retrying for %.0f s", exc, self.retry_seconds)
                if now - self._down_since > self.retry_seconds:
                    self.dropped += 1
                    return
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            if self._down_since is not None:
                log.info("publishing to Redis works again")
                self._down_since = None
            return


async def listen_forever(
    url: str,
    channel: str,
    *,
    on_message: Callable[[str, bytes], None],
    on_connect: Callable[[], None],
    pattern: bool = False,
) -> None:
    """Subscribe and hand each message to ``on_message(channel, data)``; reconnect for ever until cancelled.

    ``on_connect`` runs after every (re)subscription: whatever was published meanwhile is gone, so
    the caller looks at the database instead.
    """
    redis = _redis()
    retry = redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0)
    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=2, retry=retry)
    failing = False
    try:
        while True:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await (pubsub.psubscribe(channel) if pattern else pubsub.subscribe(channel))
                if failing:
                    log.info("subscribed to Redis %s again", channel)
                failing = False
                on_connect()
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message["type"] in ("message", "pmessage"):
                        name = message["channel"]
                        on_message(name.decode() if isinstance(name, bytes) else name, message["data"])
            except (redis.RedisError, OSError) as exc:
                if not failing:
                    log.warning("Redis subscription to %s lost (%s); reconnecting", channel, exc)
                failing = True
                await asyncio.sleep(RECONNECT_SECONDS)
            finally:
                await pubsub.aclose()
    finally:
        await client.aclose()


class WorkDoorbell:
    """``ring()`` wakes every worker process listening on Redis; the claim itself stays in the database."""

    def __init__(self, url: str, *, outbox: RedisOutbox | None = None) -> None:
        self.url = url
        self.outbox = outbox or RedisOutbox(url)

    def ring(self) -> None:
        self.outbox.send(WORK_CHANNEL, "1")

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` on every ring, and after every reconnection (rings may have been missed)."""
        await listen_forever(self.url, WORK_CHANNEL, on_message=lambda _c, _d: wake(), on_connect=wake)
