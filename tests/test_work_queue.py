"""The durable queue: claims under a lease, writes guarded by it, poison rows, fair scheduling."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from reference_backend.batches import create_batch
from reference_backend.database import Store
from reference_backend.ingest import ParsedTable
from reference_backend.models import Batch, Row, User
from reference_backend.provider import EnhanceResult
from reference_backend.work_queue import WorkQueue

pytestmark = pytest.mark.area("Queue and states")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    store.create_schema()
    with store.write() as session:
        session.add(User(id=1, email="u@x.test", password_hash="x"))
    return store


def _batch(store: Store, prompts: int) -> str:
    table = ParsedTable(
        columns=["prompt"],
        prompt_column="prompt",
        rows=[{"prompt": f"p{i}"} for i in range(prompts)],
        source_format="text",
    )
    with store.write() as session:
        return create_batch(session, user_id=1, table=table, filename=None).id


def _ok(chunk) -> list[EnhanceResult]:  # type: ignore[no-untyped-def]
    return [
        EnhanceResult(key=i.key, enhanced_prompt=i.prompt + "!", techniques=("role",), error=None) for i in chunk.items
    ]


def _queue(store: Store, worker: str, **kwargs: float) -> WorkQueue:
    return WorkQueue(
        store,
        worker_id=worker,
        chunk_size=int(kwargs.get("chunk", 2)),
        lease_seconds=kwargs.get("lease", 60.0),
        max_attempts=3,
    )


def test_claim_then_complete_finishes_the_batch(store: Store) -> None:
    batch_id = _batch(store, 3)
    queue = _queue(store, "w1")
    first = queue.claim()
    assert first is not None and [i.prompt for i in first.items] == ["p0", "p1"]
    assert [e["status"] for e in first.events] == ["running"]
    second = queue.claim()
    assert second is not None and [i.prompt for i in second.items] == ["p2"]
    assert queue.claim() is None
    queue.complete(first, _ok(first))
    events, ok, failed = queue.complete(second, _ok(second))
    assert (ok, failed) == (1, 0)
    assert [e["type"] for e in events] == ["progress", "completed"]
    with store.read() as session:
        assert session.get(Batch, batch_id).status == "completed"


def test_result_after_lease_loss_is_discarded_so_the_row_is_written_once(store: Store) -> None:
    _batch(store, 1)
    slow = _queue(store, "slow", lease=0.01)
    stolen = slow.claim()
    time.sleep(0.02)  # let the lease lapse; the other worker may now take the row
    fast = _queue(store, "fast")
    retaken = fast.claim()
    assert retaken is not None and retaken.items[0].attempt == 2
    assert fast.complete(retaken, _ok(retaken))[1:] == (1, 0)
    assert slow.complete(stolen, _ok(stolen))[1:] == (0, 0)
    with store.read() as session:
        (row,) = session.scalars(select(Row)).all()
        batch = session.scalars(select(Batch)).one()
    assert (row.status, row.attempts, batch.succeeded) == ("succeeded", 2, 1)


def test_poison_row_fails_after_max_attempts(store: Store) -> None:
    _batch(store, 1)
    for attempt in range(3):
        chunk = _queue(store, f"crashing-{attempt}", lease=0.0).claim()
        assert chunk is not None and chunk.items  # claimed, then the worker "dies" holding it
    final = _queue(store, "last").claim()
    assert final is not None and final.items == []
    assert [e["status"] for e in final.events][-1] == "failed"
    with store.read() as session:
        row = session.scalars(select(Row)).one()
    assert row.status == "failed" and "gave up after 3 attempts" in row.error


def test_dispatcher_alternates_between_batches(store: Store) -> None:
    big = _batch(store, 20)
    small = _batch(store, 4)
    queue = _queue(store, "w")
    order = [queue.claim().batch_id for _ in range(4)]  # type: ignore[union-attr]
    assert order == [big, small, big, small]
