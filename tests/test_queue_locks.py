"""Which of one batch's transactions wait for which on PostgreSQL.

Claims of one batch never wait for another claim or for a store of it (they run side by side, each taking rows
nobody holds); a user's action (pause, cancel, retry) still never lands halfway through a claim.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from reference_backend.database import Store
from reference_backend.ledger import calls_for_batch
from reference_backend.models import Batch, Row, User

from .test_distributed_queue import _batch, _queue

pytestmark = [pytest.mark.area("Distributed mode"), pytest.mark.distributed]

# Long enough for a claim on a starved machine; a claim that waits for the lock never returns within it.
CLAIM_SECONDS = 30.0


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    store = Store(postgres_url)
    store.create_schema()
    with store.write() as session:
        session.add_all(
            [User(id=1, email="a@x.test", password_hash="x"), User(id=2, email="b@x.test", password_hash="x")]
        )
    yield store
    store.dispose()


def _lock(session: Session, batch_id: str, mode: str) -> None:
    session.execute(text(f"SELECT id FROM batches WHERE id = :b FOR {mode}"), {"b": batch_id})


def _waiting_on_a_lock(store: Store) -> bool:
    with store.read() as session:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(session.scalar(query))


def test_a_claim_takes_rows_while_another_transaction_writes_the_batch(store: Store) -> None:
    batch_id = _batch(store, 6)
    assert _queue(store, "first").claim() is not None  # the batch is running
    with store.read() as session:
        turn = session.scalar(select(Batch.last_claimed_at).where(Batch.id == batch_id))
    with ThreadPoolExecutor(1) as pool, store.write() as writer:
        # What another worker's claim or store holds on the batch's row until it commits.
        _lock(writer, batch_id, "NO KEY UPDATE")
        chunks = pool.submit(_queue(store, "second").claim_many, 2).result(timeout=CLAIM_SECONDS)
        assert [sorted(c.row_numbers.values()) for c in chunks] == [[3, 4], [5, 6]]
    with store.read() as session:
        batch = session.scalars(select(Batch).where(Batch.id == batch_id)).one()
        assert batch.last_claimed_at == turn, "the turn moved under another transaction's lock"
        assert [c.outcome for c in calls_for_batch(session, batch_id)] == [None] * 6


def test_batches_someone_else_writes_still_take_turns_within_one_claim(store: Store) -> None:
    first, second = _batch(store, 6), _batch(store, 6, user_id=2)
    with ThreadPoolExecutor(1) as pool, store.write() as writer:
        for batch_id in (first, second):  # both being stored by other workers, say
            _lock(writer, batch_id, "NO KEY UPDATE")
        chunks = pool.submit(_queue(store, "w").claim_many, 5).result(timeout=CLAIM_SECONDS)
    assert [c.batch_id for c in chunks] == [first, second, first, second, first]
    assert [sorted(c.row_numbers.values()) for c in chunks] == [[1, 2], [1, 2], [3, 4], [3, 4], [5, 6]]


def test_a_claim_waits_for_a_pause_in_progress_and_then_takes_nothing(store: Store) -> None:
    batch_id = _batch(store, 6)
    assert _queue(store, "first").claim() is not None
    with ThreadPoolExecutor(1) as pool:
        with store.write() as pausing:
            _lock(pausing, batch_id, "UPDATE")  # what a user's action takes
            pausing.execute(update(Batch).where(Batch.id == batch_id).values(status="paused"))
            claim = pool.submit(_queue(store, "second").claim_many, 2)
            deadline = time.monotonic() + CLAIM_SECONDS
            while not _waiting_on_a_lock(store) and time.monotonic() < deadline:
                if wait([claim], timeout=0.01).done:
                    break
            assert not claim.done(), "the claim went ahead while the pause held the batch"
        assert claim.result(timeout=CLAIM_SECONDS) == []
    with store.read() as session:
        statuses = session.scalars(select(Row.status).where(Row.batch_id == batch_id).order_by(Row.row_number))
        assert list(statuses) == ["running"] * 2 + ["pending"] * 4


def test_rows_to_fail_as_poison_wait_for_a_claim_that_can_write_the_batch(store: Store) -> None:
    batch_id = _batch(store, 1)
    for attempt in range(3):
        assert _queue(store, f"doomed-{attempt}").claim() is not None
        with store.write() as session:
            session.execute(update(Row).where(Row.status == "running").values(lease_until=0.0))
    with ThreadPoolExecutor(1) as pool, store.write() as writer:
        _lock(writer, batch_id, "NO KEY UPDATE")
        chunks = pool.submit(_queue(store, "blocked").claim_many, 1).result(timeout=CLAIM_SECONDS)
        assert chunks == [], "a row was failed without the batch's counters"
    final = _queue(store, "last").claim()
    assert final is not None and final.items == [] and final.events[-1]["status"] == "failed"
    with store.read() as session:
        assert [c.outcome for c in calls_for_batch(session, batch_id)] == ["lost", "lost", "lost"]
