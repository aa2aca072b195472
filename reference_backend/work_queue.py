"""The durable work queue in the database: rows claimed in chunks under a lease, results stored once.

Rows are claimed in chunks under a lease, sent to the provider as one batched call, and written
back only if this worker still holds the lease for that same attempt, so a row's result is stored
exactly once even if a lease expires and another worker runs it again. Every claim and what became
of it go into the provider-call ledger (``ledger.py``) in the same transactions.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from . import ledger
from .batches import finish_if_done, record_event, set_status
from .config import Settings
from .database import Store
from .lifecycle import BatchStatus, RowStatus
from .models import Batch, CallOutcome, Row
from .provider import EnhanceResult, PromptInput

log = logging.getLogger(__name__)

RUNNABLE = (BatchStatus.QUEUED.value, BatchStatus.RUNNING.value)
# A row whose worker was lost this many times is poison and fails instead of running again.
MAX_ATTEMPTS = 3
# How often an idle dispatcher looks for rows left behind in cancelled batches.
SETTLE_EVERY_SECONDS = 1.0


@dataclass
class Chunk:
    batch_id: str
    items: list[PromptInput]
    events: list[dict[str, Any]] = field(default_factory=list)
    row_numbers: dict[str, int] = field(default_factory=dict)  # item key -> row number, for the ledger

    @property
    def row_ids(self) -> list[int]:
        return [int(item.key) for item in self.items]


class Doorbell(Protocol):
    def ring(self) -> None:
        """Tell every worker process there may be new work; must not block."""


def _claimable(now: float) -> ColumnElement[bool]:
    return or_(
        Row.status == RowStatus.PENDING.value,
        and_(Row.status == RowStatus.RUNNING.value, Row.lease_until < now),
    )


class WorkQueue:
    """Claim and complete operations on the rows table (synchronous; run them in a thread)."""

    def __init__(self, store: Store, *, worker_id: str, chunk_size: int, lease_seconds: float, max_attempts: int):
        self.store = store
        self.worker_id = worker_id
        self.chunk_size = chunk_size
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts

    def release_orphans(self) -> int:
        """Put every running row back in the queue: only right at start when this process is the only worker."""
        now = time.time()
        with self.store.write() as session:
            result = session.execute(
                update(Row)
                .where(Row.status == RowStatus.RUNNING.value)
                .values(
                    status=RowStatus.PENDING.value,
                    lease_owner=None,
                    lease_until=None,
                    lost_attempts=Row.lost_attempts + 1,
                )
            )
            ledger.close_all_open(session, CallOutcome.LOST, now=now)
            return result.rowcount

    def claim(self) -> Chunk | None:
        chunks = self.claim_many(1)
        return chunks[0] if chunks else None

    def claim_many(self, max_chunks: int) -> list[Chunk]:
        """Up to ``max_chunks`` chunks in one transaction, taking turns between users, then their batches.

        The next chunk comes from the user served least recently (the latest claim on any of their
        batches), then from that user's batch served least recently: one user's 1000-row batch, or ten
        of them, cannot starve another user's 10-row batch.
        """
        now = time.time()
        claimable = _claimable(now)
        served = aliased(Batch)
        user_last_served = (
            select(func.max(served.last_claimed_at)).where(served.user_id == Batch.user_id).scalar_subquery()
        )
        candidates = (
            select(Batch)
            .where(Batch.status.in_(RUNNABLE), exists().where(Row.batch_id == Batch.id, claimable))
            .order_by(user_last_served, Batch.last_claimed_at, Batch.created_at)
            .limit(1)
        )
        chunks: list[Chunk] = []
        with self.store.write() as session:
            for turn in range(max_chunks):
                batch = session.scalars(candidates.with_for_update(skip_locked=True, of=Batch)).first()
                if batch is None and turn == 0:
                    # Every candidate is locked by another worker's claim or result, for a few ms: wait
                    # for the fairest one instead of idling until the next poll. Waiting while holding
                    # no lock cannot deadlock (results lock their rows, then the batch, and wait no more).
                    batch = session.scalars(candidates.with_for_update(of=Batch)).first()
                if batch is None:
                    break
                # Strictly increasing, so batches served in one transaction still take turns.
                batch.last_claimed_at = now + turn * 1e-6
                chunks.append(self._claim_rows(session, batch, claimable, now))
        return chunks

    def settle_cancelled(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """Cancel rows a lost worker left behind in batches cancelled meanwhile; returns events to publish.

        Cancelling only touches pending rows; rows in flight finish normally. But a row whose worker
        died (or that was handed back) after the cancel would never be claimed again, so it is
        settled here once its lease lapses, and the batch's counts add up to its total.
        """
        now = time.time()
        claimable = _claimable(now)
        published = []
        with self.store.write() as session:
            batches = session.scalars(
                select(Batch)
                .where(Batch.status == BatchStatus.CANCELLED.value, exists().where(Row.batch_id == Batch.id, claimable))
                .limit(10)
                .with_for_update(skip_locked=True, of=Batch)
            ).all()
            for batch in batches:
                rows = session.scalars(
                    select(Row).where(Row.batch_id == batch.id, claimable).with_for_update(skip_locked=True)
                ).all()
                lost = []
                for row in rows:
                    if row.status == RowStatus.RUNNING.value:
                        lost.append((row.row_number, row.attempts, CallOutcome.LOST))
                    row.status = RowStatus.CANCELLED.value
                    row.lease_owner = row.lease_until = None
                ledger.close_calls(session, batch.id, lost, now=now)
                batch.cancelled += len(rows)
                published.append((batch.id, [record_event(session, batch, "progress")]))
        return published

    def _claim_rows(self, session: Session, batch: Batch, claimable: ColumnElement[bool], now: float) -> Chunk:
        rows = session.scalars(
            select(Row)
            .where(Row.batch_id == batch.id, claimable)
            .order_by(Row.row_number)
            .limit(self.chunk_size)
            .with_for_update(skip_locked=True)
        ).all()
        chunk = Chunk(batch_id=batch.id, items=[])
        if batch.status == BatchStatus.QUEUED.value:
            chunk.events.append(set_status(session, batch, BatchStatus.RUNNING))
        lost: list[tuple[int, int, CallOutcome]] = []
        opened: list[tuple[int, int]] = []
        gave_up = 0
        for row in rows:
            if row.status == RowStatus.RUNNING.value:  # its lease lapsed: the worker holding it is gone
                row.lost_attempts += 1
                lost.append((row.row_number, row.attempts, CallOutcome.LOST))
            if row.lost_attempts >= self.max_attempts:
                # A row that keeps taking its worker down is poison: fail it, don't loop on it.
                row.status = RowStatus.FAILED.value
                row.error = f"gave up after {row.lost_attempts} attempts (worker lost each time)"
                row.lease_owner = row.lease_until = None
                gave_up += 1
                continue
            row.attempts += 1
            row.status = RowStatus.RUNNING.value
            row.lease_owner = self.worker_id
            row.lease_until = now + self.lease_seconds
            key = str(row.id)
            chunk.items.append(PromptInput(key=key, prompt=row.prompt, category=row.category, attempt=row.attempts))
            chunk.row_numbers[key] = row.row_number
            opened.append((row.row_number, row.attempts))
        session.flush()  # the next turn's "claimable" query must see these rows as taken
        ledger.close_calls(session, batch.id, lost, now=now)
        ledger.open_calls(session, batch.id, opened, worker_id=self.worker_id, now=now)
        if gave_up:
            batch.failed += gave_up
            chunk.events.append(record_event(session, batch, "progress"))
            chunk.events.extend(finish_if_done(session, batch))
        return chunk

    def complete(self, chunk: Chunk, results: list[EnhanceResult]) -> tuple[list[dict[str, Any]], int, int]:
        """Store results still covered by our lease; returns events and the (succeeded, failed) counts.

        The attempt number is the fencing token: a result is written only if the row is still running
        under this worker *and* this attempt, keyed by its primary key (one per batch and row number).
        """
        attempt_of = {int(item.key): item.attempt for item in chunk.items}
        now = time.time()
        with self.store.write() as session:
            # Rows first, the batch last: the batch's lock, which every claim and result of the batch
            # needs, is then held only for the counters, the event and the commit.
            candidates = session.execute(
                select(Row.id, Row.attempts)
                .where(
                    Row.id.in_([int(r.key) for r in results]),
                    Row.status == RowStatus.RUNNING.value,
                    Row.lease_owner == self.worker_id,
                )
                .with_for_update()
            ).all()
            held = {row_id for row_id, attempts in candidates if attempts == attempt_of.get(row_id)}
            writes = [_row_write(int(r.key), r) for r in results if int(r.key) in held]
            ledger.close_calls(session, chunk.batch_id, _outcomes(chunk, results, held), now=now)
            if not writes:
                return [], 0, 0
            session.execute(update(Row), writes)  # one executemany, keyed by primary key
            batch = session.scalars(select(Batch).where(Batch.id == chunk.batch_id).with_for_update()).one()
            succeeded = sum(1 for w in writes if w["status"] == RowStatus.SUCCEEDED.value)
            failed = len(writes) - succeeded
            batch.succeeded += succeeded
            batch.failed += failed
            events = [record_event(session, batch, "progress")]
            events.extend(finish_if_done(session, batch))
            return events, succeeded, failed

    def renew(self, row_ids: Collection[int]) -> int:
        """Extend this worker's leases on rows still in flight; returns how many it still holds."""
        if not row_ids:
            return 0
        # SKIP LOCKED: a row locked right now is being completed or taken over; it needs no renewal,
        # and waiting for it could deadlock against a completion locking the same rows in another order.
        mine = (
            select(Row.id)
            .where(Row.id.in_(row_ids), Row.status == RowStatus.RUNNING.value, Row.lease_owner == self.worker_id)
            .with_for_update(skip_locked=True)
        )
        with self.store.write() as session:
            result = session.execute(
                update(Row)
                .where(Row.id.in_(mine))
                .values(lease_until=time.time() + self.lease_seconds)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount

    def release(self, chunks: Collection[Chunk]) -> int:
        """Hand unfinished rows back to the queue at shutdown, so no one waits for their leases to lapse."""
        claims = [(chunk, item) for chunk in chunks for item in chunk.items]
        if not claims:
            return 0
        now = time.time()
        with self.store.write() as session:
            held = session.execute(
                select(Row.id, Row.attempts)
                .where(
                    Row.id.in_([int(item.key) for _, item in claims]),
                    Row.status == RowStatus.RUNNING.value,
                    Row.lease_owner == self.worker_id,
                )
                .with_for_update()
            ).all()
            attempts = dict(held)
            released = [(chunk, item) for chunk, item in claims if attempts.get(int(item.key)) == item.attempt]
            if not released:
                return 0
            session.execute(
                update(Row)
                .where(Row.id.in_([int(item.key) for _, item in released]))
                .values(status=RowStatus.PENDING.value, lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
            for chunk, item in released:
                outcome = (chunk.row_numbers[item.key], item.attempt, CallOutcome.RELEASED)
                ledger.close_calls(session, chunk.batch_id, [outcome], now=now)
            return len(released)


def _outcomes(chunk: Chunk, results: list[EnhanceResult], held: set[int]) -> list[tuple[int, int, CallOutcome]]:
    attempt_of = {item.key: item.attempt for item in chunk.items}
    outcomes = []
    for result in results:
        if int(result.key) not in held:
            outcome = CallOutcome.DISCARDED
        else:
            outcome = CallOutcome.SUCCEEDED if result.error is None else CallOutcome.FAILED
        outcomes.append((chunk.row_numbers[result.key], attempt_of[result.key], outcome))
    return outcomes


def _row_write(row_id: int, result: EnhanceResult) -> dict[str, Any]:
    ok = result.error is None
    return {
        "id": row_id,
        "status": (RowStatus.SUCCEEDED if ok else RowStatus.FAILED).value,
        "enhanced_prompt": result.enhanced_prompt if ok else None,
        "techniques": list(result.techniques) if ok else None,
        "error": None if ok else result.error,
        "lease_owner": None,
        "lease_until": None,
    }


def work_queue_from(settings: Settings, store: Store, *, worker_id: str) -> WorkQueue:
    """The queue as ``BATCHQA_PROVIDER_BATCH_SIZE`` and ``BATCHQA_LEASE_SECONDS`` describe it (API and workers)."""
    return WorkQueue(
        store,
        worker_id=worker_id,
        chunk_size=settings.provider_batch_size,
        lease_seconds=settings.lease_seconds,
        max_attempts=MAX_ATTEMPTS,
    )


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
