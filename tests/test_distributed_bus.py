"""Progress fan-out over Redis between processes, gap filling from the database, and the workers' doorbell."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from reference_backend.batches import create_batch, record_event
from reference_backend.database import Store
from reference_backend.ingest import ParsedTable
from reference_backend.models import Batch, User
from reference_backend.redis_bus import RedisBus
from reference_backend.redis_pubsub import WorkDoorbell
from utilities.procs.services import RedisServer

pytestmark = [pytest.mark.distributed, pytest.mark.area("Distributed mode")]

WAIT = 10.0  # seconds any single delivery may take on a loaded machine


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'bus.sqlite3'}")
    store.create_schema()
    with store.write() as session:
        session.add(User(id=1, email="u@x.test", password_hash="x"))
    return store


def _new_batch(store: Store) -> str:
    table = ParsedTable(columns=["prompt"], prompt_column="prompt", rows=[{"prompt": "p"}], source_format="text")
    with store.write() as session:
        return create_batch(session, user_id=1, table=table, filename=None).id  # stores event seq 1


def _store_events(store: Store, batch_id: str, count: int) -> list[dict[str, Any]]:
    """Record ``count`` progress events, as a worker would, without publishing them."""
    with store.write() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        return [record_event(session, batch, "progress") for _ in range(count)]


async def _take(queue: asyncio.Queue[dict[str, Any]], count: int) -> list[int]:
    return [(await asyncio.wait_for(queue.get(), WAIT))["seq"] for _ in range(count)]


def _run(scenario: Callable[[RedisBus, RedisBus], Awaitable[None]], url: str, store: Store) -> None:
    """Two buses on one Redis stand for two API processes."""

    async def main() -> None:
        buses = [RedisBus(url, store=store, reconcile_seconds=0.2) for _ in range(2)]
        for bus in buses:
            bus.bind(asyncio.get_running_loop())
            await bus.start()
        try:
            await scenario(*buses)
        finally:
            for bus in buses:
                await bus.close()

    asyncio.run(main())


def test_event_published_by_one_process_reaches_sockets_of_another(redis_server: RedisServer, store: Store) -> None:
    batch_id = _new_batch(store)

    async def scenario(publisher: RedisBus, listener: RedisBus) -> None:
        queue = listener.subscribe(batch_id)
        for event in _store_events(store, batch_id, 3):
            publisher.publish(batch_id, event)
        assert await _take(queue, 3) == [2, 3, 4]

    _run(scenario, redis_server.url, store)


def test_gap_is_filled_from_the_database_and_duplicates_are_dropped(redis_server: RedisServer, store: Store) -> None:
    batch_id = _new_batch(store)

    async def scenario(publisher: RedisBus, listener: RedisBus) -> None:
        queue = listener.subscribe(batch_id)
        events = _store_events(store, batch_id, 4)
        publisher.publish(batch_id, events[2])  # seq 4 arrives first: 2 and 3 come from the database
        publisher.publish(batch_id, events[0])  # late and already delivered: dropped
        publisher.publish(batch_id, events[3])
        assert await _take(queue, 4) == [2, 3, 4, 5]
        await asyncio.sleep(0.3)  # a reconcile pass: nothing further may arrive
        assert queue.empty()

    _run(scenario, redis_server.url, store)


def test_events_stored_while_redis_restarts_still_reach_the_socket(redis_server: RedisServer, store: Store) -> None:
    batch_id = _new_batch(store)

    async def scenario(publisher: RedisBus, listener: RedisBus) -> None:
        queue = listener.subscribe(batch_id)
        await asyncio.to_thread(redis_server.stop, kill=True)
        for event in _store_events(store, batch_id, 3):
            publisher.publish(batch_id, event)  # Redis is down: these may never go out
        await asyncio.to_thread(redis_server.restart)
        assert await _take(queue, 3) == [2, 3, 4]
        after = _store_events(store, batch_id, 1)[0]
        publisher.publish(batch_id, after)
        assert await _take(queue, 1) == [5]

    _run(scenario, redis_server.url, store)


def test_doorbell_wakes_a_listening_worker_and_again_after_redis_returns(redis_server: RedisServer) -> None:
    async def main() -> None:
        woken = asyncio.Event()
        listener = asyncio.create_task(WorkDoorbell(redis_server.url).listen(woken.set))
        ringer = WorkDoorbell(redis_server.url)
        try:
            await asyncio.wait_for(woken.wait(), WAIT)  # on subscribing: work may have arrived before
            woken.clear()
            ringer.ring()
            await asyncio.wait_for(woken.wait(), WAIT)
            woken.clear()
            await asyncio.to_thread(redis_server.restart, kill=True)
            await asyncio.wait_for(woken.wait(), WAIT)  # resubscribed: rings may have been missed
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            await asyncio.to_thread(ringer.outbox.close)

    asyncio.run(main())
