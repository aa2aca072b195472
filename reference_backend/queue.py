"""The durable work queue in the database and the in-process asyncio worker pool that drains it.

Rows are claimed in chunks under a lease, sent to the provider as one batched call, and written
back only if this worker still holds the lease, so a row's result is stored exactly once even if a
lease expires and another worker runs it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.orm import Session

from .batches import finish_if_done, record_event, set_status
from .events import EventPublisher
from .metrics import Metrics
from .models import Batch, Row
from .provider import EnhanceResult, PromptInput, Provider
from .states import BatchStatus, RowStatus
from .store import Store

log = logging.getLogger(__name__)

RUNNABLE = (BatchStatus.QUEUED.value, BatchStatus.RUNNING.value)


@dataclass
class Chunk:
    batch_id: str
    items: list[PromptInput]
    events: list[dict[str, Any]] = field(default_factory=list)


class WorkQueue:
    """Claim and complete operations on the rows table (synchronous; run them in a thread)."""

    def __init__(self, store: Store, *, worker_id: str, chunk_size: int, lease_seconds: float, max_attempts: int):
        self.store = store
        self.worker_id = worker_id
        self.chunk_size = chunk_size
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts

    def release_orphans(self) -> int:
        """Put every running row back in the queue: used at start when this process is the only worker."""
        with self.store.write() as session:
            result = session.execute(
                update(Row)
                .where(Row.status == RowStatus.RUNNING.value)
                .values(status=RowStatus.PENDING.value, lease_owner=None, lease_until=None)
            )
            return result.rowcount

    def claim(self) -> Chunk | None:
        chunks = self.claim_many(1)
        return chunks[0] if chunks else None

    def claim_many(self, max_chunks: int) -> list[Chunk]:
        """Up to ``max_chunks`` chunks in one transaction, each from the least recently served batch."""
        now = time.time()
        claimable = or_(
            Row.status == RowStatus.PENDING.value,
            and_(Row.status == RowStatus.RUNNING.value, Row.lease_until < now),
        )
        chunks: list[Chunk] = []
        with self.store.write() as session:
            for turn in range(max_chunks):
                batch = session.scalars(
                    select(Batch)
                    .where(Batch.status.in_(RUNNABLE), exists().where(Row.batch_id == Batch.id, claimable))
                    .order_by(Batch.last_claimed_at, Batch.created_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if batch is None:
                    break
                # Strictly increasing, so batches served in one transaction still take turns.
                batch.last_claimed_at = now + turn * 1e-6
                chunks.append(self._claim_rows(session, batch, claimable, now))
        return chunks

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
        gave_up = 0
        for row in rows:
            row.attempts += 1
            if row.attempts > self.max_attempts:
                # A row that keeps taking its worker down is poison: fail it, don't loop on it.
                row.status = RowStatus.FAILED.value
                row.error = f"gave up after {self.max_attempts} attempts (worker lost each time)"
                row.lease_owner = row.lease_until = None
                gave_up += 1
                continue
            row.status = RowStatus.RUNNING.value
            row.lease_owner = self.worker_id
            row.lease_until = now + self.lease_seconds
            chunk.items.append(
                PromptInput(key=str(row.id), prompt=row.prompt, category=row.category, attempt=row.attempts)
            )
        session.flush()  # the next turn's "claimable" query must see these rows as taken
        if gave_up:
            batch.failed += gave_up
            chunk.events.append(record_event(session, batch, "progress"))
            chunk.events.extend(finish_if_done(session, batch))
        return chunk

    def complete(self, chunk: Chunk, results: list[EnhanceResult]) -> tuple[list[dict[str, Any]], int, int]:
        """Store results still covered by our lease; returns events and the (succeeded, failed) counts."""
        with self.store.write() as session:
            batch = session.scalars(select(Batch).where(Batch.id == chunk.batch_id).with_for_update()).one()
            held = set(
                session.scalars(
                    select(Row.id)
                    .where(
                        Row.id.in_([int(r.key) for r in results]),
                        Row.status == RowStatus.RUNNING.value,
                        Row.lease_owner == self.worker_id,
                    )
                    .with_for_update()
                )
            )
            writes = [_row_write(int(r.key), r) for r in results if int(r.key) in held]
            if not writes:
                return [], 0, 0
            session.execute(update(Row), writes)  # one executemany, keyed by primary key
            succeeded = sum(1 for w in writes if w["status"] == RowStatus.SUCCEEDED.value)
            failed = len(writes) - succeeded
            batch.succeeded += succeeded
            batch.failed += failed
            events = [record_event(session, batch, "progress")]
            events.extend(finish_if_done(session, batch))
            return events, succeeded, failed


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


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class WorkerPool:
    """Keeps up to ``concurrency`` batched provider calls in flight, fed from the ``WorkQueue``."""

    def __init__(
        self,
        queue: WorkQueue,
        provider: Provider,
        publisher: EventPublisher,
        metrics: Metrics,
        *,
        concurrency: int,
        idle_poll_seconds: float = 0.5,
    ) -> None:
        self.queue = queue
        self.provider = provider
        self.publisher = publisher
        self.metrics = metrics
        self.concurrency = concurrency
        self.idle_poll_seconds = idle_poll_seconds
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._runner = asyncio.create_task(self._run(), name="batchqa-dispatcher")

    async def stop(self) -> None:
        tasks = [t for t in (self._runner, *self._in_flight) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def notify(self) -> None:
        """Wake the dispatcher (new or resumed work); callable from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            free = self.concurrency - len(self._in_flight)
            if free > 0:
                try:
                    chunks = await asyncio.to_thread(self.queue.claim_many, free)
                except Exception:
                    log.exception("claiming work failed; retrying")
                    chunks = []
                for chunk in chunks:
                    self._publish(chunk.batch_id, chunk.events)
                    task = asyncio.create_task(self._process(chunk))
                    self._in_flight.add(task)
                    task.add_done_callback(self._on_done)
                if chunks:
                    continue
            # Woken by new work, a freed slot, or the timeout (which catches leases that lapse silently).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.idle_poll_seconds)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    async def _process(self, chunk: Chunk) -> None:
        if not chunk.items:
            return
        started = time.perf_counter()
        try:
            results = await self.provider.enhance_many(chunk.items)
        except Exception as exc:  # the provider broke as a whole: every row of the call fails, visibly
            log.exception("provider call failed for batch %s", chunk.batch_id)
            results = [
                EnhanceResult(key=i.key, enhanced_prompt=None, techniques=(), error=f"provider error: {exc}")
                for i in chunk.items
            ]
        self.metrics.provider_latency.observe(time.perf_counter() - started)
        try:
            events, succeeded, failed = await asyncio.to_thread(self.queue.complete, chunk, results)
        except Exception:
            # The rows keep their lease and run again once it expires; say so loudly.
            log.exception("storing results of batch %s failed; rows will be retried", chunk.batch_id)
            return
        self.metrics.rows_processed.labels("succeeded").inc(succeeded)
        self.metrics.rows_processed.labels("failed").inc(failed)
        self._publish(chunk.batch_id, events)

    def _publish(self, batch_id: str, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.publisher.publish(batch_id, event)
