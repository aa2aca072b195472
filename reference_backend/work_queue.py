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
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from . import ledger
from .batches import finish_if_done, record_event, set_status
from .config import Settings
from .database import Store
from .lifecycle import BatchStatus, RowStatus
from .models import Batch, CallOutcome, Row
from .provider import EnhanceResult, PromptInput
from .queue_statements import (
    ANY_CLAIMABLE,
    BATCH_TO_WRITE,
    CANDIDATE_WAITING,
    CANDIDATES_SHARED,
    CANDIDATES_TO_WRITE,
    HELD_ROWS,
    NEXT_ROWS,
    TAKE_ROWS,
    claimable,
)

log = logging.getLogger(__name__)

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


@dataclass
class Stored:
    """What storing results did to one batch: the events to publish and how many rows it settled."""

    batch_id: str
    events: list[dict[str, Any]]
    succeeded: int
    failed: int


@dataclass
class Claimed:
    """What one claim took, and whether it took the last of what was claimable then (``exhausted``).

    An exhausted claim lets a worker skip its next claim until work is signalled: that claim would find nothing
    and only delay the store of the results just returned.
    """

    chunks: list[Chunk]
    exhausted: bool


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
        """Up to ``max_chunks`` chunks in one transaction, taking turns between users, then their batches.

        The next chunk comes from the user served least recently (the latest claim on any of their
        batches), then from that user's batch served least recently: one user's 1000-row batch, or ten
        of them, cannot starve another user's 10-row batch. Rows in ``holding`` (this process's own claims,
        still in hand) are never taken, even when their lease lapsed.

        Claims of one batch by several workers run side by side: each takes rows nobody holds. A batch whose row
        someone else writes at the moment (another claim moving its turn, a store) is served without moving its
        turn, so this claim passes it over until it has served every other candidate once; a batch whose rows are
        all being taken by another claim is left to it.
        """
        now = time.time()
        params: dict[str, Any] = {"now": now, "holding": list(holding), "passed": [], "taken": []}
        opened: dict[str, list[tuple[int, int]]] = {}  # per batch, the (row number, attempt) claimed
        shared: list[str] = []  # served without moving their turn: passed over until every candidate was
        spent: list[str] = []  # no row left that this claim could take
        chunks: list[Chunk] = []
        last_had_more = True
        with self.store.write() as session:
            turn = 0
            while turn < max_chunks:
                batch, writable, alone = self._next_candidate(session, params, shared, spent, first=turn == 0)
                if batch is None:
                    break
                # A batch alone in the queue has no one to take turns with: its rows for every remaining turn
                # are claimed at once, in one statement each, instead of one round per chunk.
                share = max_chunks - turn if alone else 1
                # Strictly increasing, so batches served in one transaction still take turns.
                taken = self._claim_rows(
                    session, batch, params, share, writable=writable, served_at=now + turn * 1e-6, opened=opened
                )
                chunks.extend(chunk for chunk in taken.chunks if chunk.items or chunk.events)
                if not writable:
                    shared.append(batch.id)
                if any(chunk.items for chunk in taken.chunks):
                    turn += share
                else:
                    spent.append(batch.id)
                last_had_more = taken.more
            # The rows of every turn are written once, whatever the number of turns.
            if params["taken"]:
                lease_until = now + self.lease_seconds
                session.execute(
                    TAKE_ROWS, {"ids": params["taken"], "worker": self.worker_id, "lease_until": lease_until}
                )
            for batch_id, claims in opened.items():
                ledger.open_calls(session, batch_id, claims, worker_id=self.worker_id, now=now)
            # Asked only when this claim seems to have taken the last rows: it found no candidate, or the last batch
            # it served had none left.
            exhausted = (turn < max_chunks or not last_had_more) and not session.scalar(ANY_CLAIMABLE, params)
        return Claimed(chunks, exhausted)

    def _next_candidate(
        self, session: Session, params: dict[str, Any], shared: list[str], spent: list[str], *, first: bool
    ) -> tuple[Batch | None, bool, bool]:
        """The fairest batch to serve next: whether this claim may write its row, and whether it is alone."""
        params["passed"] = shared + spent
        found = session.scalars(CANDIDATES_TO_WRITE, params).all()
        if found:
            return found[0], True, len(found) == 1 and not shared
        found = session.scalars(CANDIDATES_SHARED, params).all()
        if not found and shared:
            # Every candidate left was served once without moving its turn: take turns among them again.
            shared.clear()
            params["passed"] = list(spent)
            found = session.scalars(CANDIDATES_SHARED, params).all()
        if not found and first:
            # Every candidate is held by a user's action (pause, cancel, retry) for a few ms: wait for the fairest
            # one instead of idling until the next poll. Waiting while holding no lock cannot deadlock.
            found = session.scalars(CANDIDATE_WAITING, params).all()
        if not found:
            return None, False, False
        return found[0], False, len(found) == 1 and not shared

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

    def _claim_rows(
        self,
        session: Session,
        batch: Batch,
        params: dict[str, Any],
        chunks: int,
        *,
        writable: bool,
        served_at: float,
        opened: dict[str, list[tuple[int, int]]],
    ) -> _Taken:
        """Choose up to ``chunks`` chunks of the batch's claimable rows (one SELECT), to be taken when the claim ends:
        their ids go into ``params["taken"]``, their ledger entries into ``opened``.

        The batch's own row is written (its turn moved to ``served_at``, its start recorded) only when it is
        ``writable``: this claim holds it and no one else writes it. Otherwise the claim goes on without it, and
        leaves alone rows that would fail as poison (that needs the batch's counters): another claim takes them.
        One row more than wanted is read, not taken, to tell whether any was left.
        """
        now = params["now"]
        wanted = chunks * self.chunk_size
        rows = session.execute(NEXT_ROWS, {**params, "batch_id": batch.id, "limit": wanted + 1}).all()
        more = len(rows) > wanted
        rows = rows[:wanted]
        events: list[dict[str, Any]] = []
        if writable:
            batch.last_claimed_at = served_at
            if batch.status == BatchStatus.QUEUED.value:
                events.append(set_status(session, batch, BatchStatus.RUNNING))
        lost: list[tuple[int, int, CallOutcome]] = []
        taken: list[int] = []
        poisoned: list[dict[str, Any]] = []
        items: list[PromptInput] = []
        row_numbers: dict[str, int] = {}
        for row in rows:
            lost_attempts = row.lost_attempts
            lapsed = row.status == RowStatus.RUNNING.value  # its lease lapsed: the worker holding it is gone
            if lapsed:
                lost_attempts += 1
            if lost_attempts >= self.max_attempts:
                if not writable:
                    continue
                # A row that keeps taking its worker down is poison: fail it, don't loop on it.
                lost.append((row.row_number, row.attempts, CallOutcome.LOST))
                poisoned.append(
                    {
                        "id": row.id,
                        "status": RowStatus.FAILED.value,
                        "lost_attempts": lost_attempts,
                        "error": f"gave up after {lost_attempts} attempts (worker lost each time)",
                        "lease_owner": None,
                        "lease_until": None,
                    }
                )
                continue
            if lapsed:
                lost.append((row.row_number, row.attempts, CallOutcome.LOST))
            attempt = row.attempts + 1
            taken.append(row.id)
            key = str(row.id)
            items.append(PromptInput(key=key, prompt=row.prompt, category=row.category, attempt=attempt))
            row_numbers[key] = row.row_number
            opened.setdefault(batch.id, []).append((row.row_number, attempt))
        params["taken"] = [*params["taken"], *taken]
        if poisoned:
            session.execute(update(Row), poisoned)  # one executemany, keyed by primary key
        ledger.close_calls(session, batch.id, lost, now=now)
        if poisoned:
            batch.failed += len(poisoned)
            events.append(record_event(session, batch, "progress"))
            events.extend(finish_if_done(session, batch))
        size = self.chunk_size
        claimed = [
            Chunk(batch.id, part, row_numbers={i.key: row_numbers[i.key] for i in part})
            for part in (items[start : start + size] for start in range(0, len(items), size))
        ] or [Chunk(batch.id, [])]
        claimed[0].events = events
        return _Taken(claimed, turn_moved=writable, more=more)

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
                # Its claim may have left the start to a claim beside it that never committed (``_claim_rows``).
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


@dataclass
class _Taken:
    """One batch's part of a claim: its chunks, whether its turn moved, whether it had rows left."""

    chunks: list[Chunk]
    turn_moved: bool
    more: bool


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
