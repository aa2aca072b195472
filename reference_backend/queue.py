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

from sqlalchemy import and_, exists, or_, select, update

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
        now = time.time()
        claimable = or_(
            Row.status == RowStatus.PENDING.value,
            and_(Row.status == RowStatus.RUNNING.value, Row.lease_until < now),
        )
        with self.store.write() as session:
            batch = session.scalars(
                select(Batch)
                .where(Batch.status.in_(RUNNABLE), exists().where(Row.batch_id == Batch.id, claimable))
                .order_by(Batch.last_claimed_at, Batch.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if batch is None:
                return None
            rows = session.scalars(
                select(Row)
                .where(Row.batch_id == batch.id, claimable)
                .order_by(Row.row_number)
                .limit(self.chunk_size)
                .with_for_update(skip_locked=True)
            ).all()
            chunk = Chunk(batch_id=batch.id, items=[])
            batch.last_claimed_at = now
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
            if gave_up:
                batch.failed += gave_up
                chunk.events.append(record_event(session, batch, "progress"))
                chunk.events.extend(finish_if_done(session, batch))
            return chunk

    def complete(self, chunk: Chunk, results: list[EnhanceResult]) -> tuple[list[dict[str, Any]], int, int]:
        """Store results still covered by our lease; returns events and the (succeeded, failed) counts."""
        succeeded = failed = 0
        with self.store.write() as session:
            batch = session.scalars(select(Batch).where(Batch.id == chunk.batch_id).with_for_update()).one()
            for result in results:
                ok = result.error is None
                written = session.execute(
                    update(Row)
                    .where(
                        Row.id == int(result.key),
                        Row.status == RowStatus.RUNNING.value,
                        Row.lease_owner == self.worker_id,
                    )
                    .values(
                        status=(RowStatus.SUCCEEDED if ok else RowStatus.FAILED).value,
                        enhanced_prompt=result.enhanced_prompt if ok else None,
                        techniques=list(result.techniques) if ok else None,
                        error=None if ok else result.error,
                        lease_owner=None,
                        lease_until=None,
                    )
                ).rowcount
                if written and ok:
                    succeeded += 1
                elif written:
                    failed += 1
            if not succeeded + failed:
                return [], 0, 0
            batch.succeeded += succeeded
            batch.failed += failed
            events = [record_event(session, batch, "progress")]
            events.extend(finish_if_done(session, batch))
            return events, succeeded, failed


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
        slots = asyncio.Semaphore(self.concurrency)
        while True:
            await slots.acquire()
            self._wake.clear()
            try:
                chunk = await asyncio.to_thread(self.queue.claim)
            except Exception:
                slots.release()
                log.exception("claiming work failed; retrying")
                await asyncio.sleep(self.idle_poll_seconds)
                continue
            if chunk is None:
                slots.release()
                # The timeout also catches leases that expire while nobody notifies us.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.idle_poll_seconds)
                continue
            self._publish(chunk.batch_id, chunk.events)
            task = asyncio.create_task(self._process(chunk))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            task.add_done_callback(lambda _t: slots.release())

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
