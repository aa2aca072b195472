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
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import exists, select, update

from . import ledger
from .batches import finish_if_done, record_event, set_status
from .claims import Chunk, Claimed, ClaimRound
from .config import Settings
from .database import Store
from .lifecycle import BatchStatus, RowStatus
from .models import Batch, CallOutcome, Row
from .provider import EnhanceResult
from .queue_statements import (
    BATCH_TO_WRITE,
    HELD_ROWS,
    claimable,
)

log = logging.getLogger(__name__)

# A row whose worker was lost this many times is poison and fails instead of running again.
MAX_ATTEMPTS = 3
# How often an idle dispatcher looks for rows left behind in cancelled batches.
SETTLE_EVERY_SECONDS = 1.0


@dataclass
class Stored:
    """What storing results did to one batch: the events to publish and how many rows it settled."""

    batch_id: str
    events: list[dict[str, Any]]
    succeeded: int
    failed: int


class Doorbell(Protocol):
    def ring(self) -> None:
        """Tell every worker process there may be new work; must not block."""


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

    def claim_many(self, max_chunks: int, *, holding: Collection[int] = ()) -> list[Chunk]:
        """``claim_round``'s chunks."""
        return self.claim_round(max_chunks, holding=holding).chunks

    def claim_round(self, max_chunks: int, *, holding: Collection[int] = ()) -> Claimed:
        """Up to ``max_chunks`` chunks in one transaction, taking turns between users, then their batches
        (``claims.ClaimRound``). Rows in ``holding`` (this process's own claims, still in hand) are never taken,
        even when their lease lapsed."""
        with self.store.write() as session:
            claim = ClaimRound(
                session,
                worker_id=self.worker_id,
                chunk_size=self.chunk_size,
                lease_seconds=self.lease_seconds,
                max_attempts=self.max_attempts,
                holding=holding,
                now=time.time(),
            )
            return claim.run(max_chunks)

    def settle_cancelled(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """Cancel rows a lost worker left behind in batches cancelled meanwhile; returns events to publish.

        Cancelling only touches pending rows; rows in flight finish normally. But a row whose worker
        died (or that was handed back) after the cancel would never be claimed again, so it is
        settled here once its lease lapses, and the batch's counts add up to its total.
        """
        now = time.time()
        open_rows = claimable(now)
        published = []
        with self.store.write() as session:
            batches = session.scalars(
                select(Batch)
                .where(Batch.status == BatchStatus.CANCELLED.value, exists().where(Row.batch_id == Batch.id, open_rows))
                .limit(10)
                .with_for_update(skip_locked=True, of=Batch)
            ).all()
            for batch in batches:
                rows = session.scalars(
                    select(Row).where(Row.batch_id == batch.id, open_rows).with_for_update(skip_locked=True)
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

    def complete(self, chunk: Chunk, results: list[EnhanceResult]) -> tuple[list[dict[str, Any]], int, int]:
        """``complete_many`` for one chunk: its events and (succeeded, failed) counts."""
        stored = self.complete_many([(chunk, results)])
        events = [event for s in stored for event in s.events]
        return events, sum(s.succeeded for s in stored), sum(s.failed for s in stored)

    def complete_many(self, done: Sequence[tuple[Chunk, list[EnhanceResult]]]) -> list[Stored]:
        """Store the results of several calls in one transaction; one ``Stored`` per batch that changed.

        Only results still covered by our lease are written. The attempt number is the fencing token: a
        result is written only if the row is still running under this worker *and* this attempt, keyed by
        its primary key (one per batch and row number). Calls that return together (a wave of them) are
        stored together, so each batch's counters, event and commit are paid once per transaction rather
        than once per call.
        """
        now = time.time()
        row_ids = [int(r.key) for _, results in done for r in results]
        with self.store.write() as session:
            # Rows first, then batches in id order: a batch's lock, which every claim and result of the batch
            # needs, is then held only for the counters, the event and the commit, and two workers storing
            # results of the same batches take their locks in the same order.
            candidates = session.execute(HELD_ROWS, {"ids": row_ids, "worker": self.worker_id}).all()
            running = {row_id: attempts for row_id, attempts in candidates}
            writes: list[dict[str, Any]] = []
            outcomes: dict[str, list[tuple[int, int, CallOutcome]]] = {}
            counts: dict[str, list[int]] = {}
            for chunk, results in done:
                held = {int(i.key) for i in chunk.items if running.get(int(i.key)) == i.attempt}
                outcomes.setdefault(chunk.batch_id, []).extend(_outcomes(chunk, results, held))
                chunk_writes = [_row_write(int(r.key), r) for r in results if int(r.key) in held]
                if chunk_writes:
                    succeeded = sum(1 for w in chunk_writes if w["status"] == RowStatus.SUCCEEDED.value)
                    tally = counts.setdefault(chunk.batch_id, [0, 0])
                    tally[0] += succeeded
                    tally[1] += len(chunk_writes) - succeeded
                    writes.extend(chunk_writes)
            for batch_id, batch_outcomes in outcomes.items():
                ledger.close_calls(session, batch_id, batch_outcomes, now=now)
            if not writes:
                return []
            session.execute(update(Row), writes)  # one executemany, keyed by primary key
            stored = []
            for batch_id in sorted(counts):
                succeeded, failed = counts[batch_id]
                batch = session.scalars(BATCH_TO_WRITE, {"batch_id": batch_id}).one()
                # Its claim may have left the start to a claim beside it that never committed (``ClaimRound``).
                events = (
                    [set_status(session, batch, BatchStatus.RUNNING)]
                    if batch.status == BatchStatus.QUEUED.value
                    else []
                )
                batch.succeeded += succeeded
                batch.failed += failed
                events.append(record_event(session, batch, "progress"))
                events.extend(finish_if_done(session, batch))
                stored.append(Stored(batch_id, events, succeeded, failed))
            return stored

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
