"""The asyncio worker pool that drains the work queue: up to ``concurrency`` batched provider calls in flight, their
leases renewed while they run, their results and events stored and published after each call returns."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from .bus import EventPublisher
from .metrics import Metrics
from .provider import EnhanceResult, Provider
from .work_queue import SETTLE_EVERY_SECONDS, Chunk, Doorbell, WorkQueue

log = logging.getLogger(__name__)


class WorkerPool:
    """Keeps up to ``concurrency`` batched provider calls in flight, fed from the ``WorkQueue``.

    When a slot's call returns, the slot asks one claimer task for its next chunk and hands the results to
    one storer task. The claimer serves every slot that asked meanwhile with one short transaction, so
    calls that return together cost one claim, not one each; the storer stores the results of calls that
    returned together in one transaction, and waits while a claim is wanted: claiming is on the provider's
    schedule, storing is not. While a chunk is held its rows' leases are
    renewed every third of the lease, so a short lease (quick recovery after a worker dies) never takes
    rows away from a worker that is merely slow.
    """

    def __init__(
        self,
        queue: WorkQueue,
        provider: Provider,
        publisher: EventPublisher,
        metrics: Metrics,
        *,
        concurrency: int,
        idle_poll_seconds: float = 0.5,
        doorbell: Doorbell | None = None,
    ) -> None:
        self.queue = queue
        self.provider = provider
        self.publisher = publisher
        self.metrics = metrics
        self.concurrency = concurrency
        self.idle_poll_seconds = idle_poll_seconds
        self.doorbell = doorbell
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        # Slot tasks and the chunk each holds (its call's, or the next one it claimed).
        self._slots: dict[asyncio.Task[None], list[Chunk]] = {}
        # Results waiting to be stored, and those being stored now, by one storer task at a time: calls that
        # return together are stored in one transaction.
        self._to_store: list[tuple[Chunk, list[EnhanceResult]]] = []
        self._storing: list[tuple[Chunk, list[EnhanceResult]]] = []
        self._storer: asyncio.Task[None] | None = None
        # Slots waiting for their next chunk (the list it goes into, and what the slot awaits), and the one task
        # that claims for them; set while no claim is wanted.
        self._wanting: list[tuple[list[Chunk], asyncio.Future[None]]] = []
        self._claimer: asyncio.Task[None] | None = None
        self._claims_idle = asyncio.Event()
        self._claims_idle.set()
        self._next_settle = 0.0
        # Signals that work may have come (new or resumed work, a lease that may have lapsed), counted, and their
        # count when a claim last took the last claimable rows: until the next signal, claiming again finds nothing.
        self._work_signals = 0
        self._drained_at: int | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._runner = asyncio.create_task(self._run(), name="batchqa-dispatcher")
        self._renewer = asyncio.create_task(self._renew_leases(), name="batchqa-lease-renewer")

    async def stop(self, *, drain_seconds: float = 0.0) -> None:
        """Stop claiming, give calls in flight ``drain_seconds`` to finish, then hand the rows still held back."""
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        if self._slots and drain_seconds > 0:
            await asyncio.wait(set(self._slots), timeout=drain_seconds)
        unfinished = dict(self._slots)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        # A claim in flight lands in its slot's list, which is handed back below with the rest.
        if self._claimer is not None:
            await asyncio.gather(self._claimer, return_exceptions=True)
        # Results already returned are stored, not handed back: a store is a transaction in a thread.
        if self._storer is not None:
            await asyncio.gather(self._storer, return_exceptions=True)
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        held = [chunk for chunks in unfinished.values() for chunk in chunks]
        if held:
            try:
                released = await asyncio.to_thread(self.queue.release, held)
            except Exception:
                log.warning("could not hand rows back at shutdown; they run again when their leases lapse")
            else:
                log.info("handed %d unfinished rows back to the queue", released)

    def notify(self) -> None:
        """New or resumed work: wake this dispatcher and, in distributed mode, every worker; any thread."""
        self.wake()
        if self.doorbell is not None:
            self.doorbell.ring()

    def wake(self) -> None:
        """Wake this process's dispatcher only; callable from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._work_may_have_come)

    def _work_may_have_come(self) -> None:
        self._work_signals += 1
        self._wake.set()

    def _drained(self) -> bool:
        """True when the last claim took the last claimable rows (or found none) and nothing signalled work since."""
        return self._drained_at == self._work_signals

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            free = self.concurrency - len(self._slots)
            if free > 0:
                # Every free slot's first chunk in one transaction; from then on each slot claims its own next
                # chunk when its call returns.
                chunks = await self._claim(free)
                for chunk in chunks:
                    held = [chunk]
                    task = asyncio.create_task(self._slot(held))
                    self._slots[task] = held
                    task.add_done_callback(self._on_slot_done)
                if chunks:
                    continue
            await self._settle_cancelled()
            # Woken by new work, a freed slot, or the timeout (which catches leases that lapse silently).
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that arrives as its
            # timeout fires, and stop() would then wait for ever for this loop.
            try:
                async with asyncio.timeout(self.idle_poll_seconds):
                    await self._wake.wait()
            except TimeoutError:
                # The timer stands for leases that lapse silently, for a pool with a slot free to take them. While
                # every slot is busy it is no sign of work: it would send the slots that end to claim again after a
                # claim that took the last rows, a claim that finds nothing and delays their results' store.
                if len(self._slots) < self.concurrency:
                    self._work_may_have_come()

    async def _claim(self, max_chunks: int) -> list[Chunk]:
        """Up to ``max_chunks`` chunks in one short transaction, their events published; none on error.

        None without asking the database when the last claim took the last claimable rows (or found none) and no
        work was signalled since: slots that end wake the dispatcher, and a claim that finds nothing would only
        delay the store of the results that just came back.
        """
        if self._drained():
            return []
        signals = self._work_signals
        started = time.perf_counter()
        try:
            claimed = await asyncio.to_thread(self.queue.claim_round, max_chunks, holding=self._held_row_ids())
        except Exception:
            log.exception("claiming work failed; retrying")
            return []
        self.metrics.claim_seconds.observe(time.perf_counter() - started)
        if claimed.exhausted:
            self._drained_at = signals
        for chunk in claimed.chunks:
            self._publish(chunk.batch_id, chunk.events)
        return claimed.chunks

    async def _slot(self, held: list[Chunk]) -> None:
        """Run chunk after chunk: when a call returns, queue its results for storing and wait for the next chunk.

        The next chunk is claimed only once the call has returned, not while it runs: a chunk claimed ahead would
        outlive a cancel or a pause by a whole call, and the rows a cancel leaves in flight must be the ones the
        provider already has.
        """
        while held:
            chunk = held[0]  # held (its leases renewed) until it is queued for storing
            results = await self._call(chunk)
            if results is not None:
                self._to_store.append((chunk, results))
            held.remove(chunk)
            claimed = self._claim_next(held)
            if self._to_store and (self._storer is None or self._storer.done()):
                self._storer = asyncio.create_task(self._store_pending(), name="batchqa-storer")
            await claimed

    def _claim_next(self, held: list[Chunk]) -> asyncio.Future[None]:
        """Queue a slot for the claimer; the future resolves once a chunk went into ``held``, or none was left."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wanting.append((held, future))
        if self._claimer is None or self._claimer.done():
            self._claims_idle.clear()
            self._claimer = asyncio.create_task(self._claim_for_slots(), name="batchqa-claimer")
        return future

    async def _claim_for_slots(self) -> None:
        """Claim for every waiting slot at once, round after round, until no slot waits."""
        try:
            while self._wanting:
                # A slot cancelled while it waited (at shutdown) wants nothing.
                wanting = [(held, future) for held, future in self._wanting if not future.done()]
                self._wanting = []
                if not wanting:
                    break
                chunks = await self._claim(len(wanting))
                for i, (held, future) in enumerate(wanting):
                    if i < len(chunks):
                        held.append(chunks[i])
                    if not future.done():
                        future.set_result(None)
        finally:
            for _, future in self._wanting:
                if not future.done():
                    future.set_result(None)
            self._wanting = []
            self._claims_idle.set()

    async def _settle_cancelled(self) -> None:
        if time.monotonic() < self._next_settle:
            return
        self._next_settle = time.monotonic() + SETTLE_EVERY_SECONDS
        try:
            settled = await asyncio.to_thread(self.queue.settle_cancelled)
        except Exception:
            log.warning("settling rows of cancelled batches failed", exc_info=True)
            return
        for batch_id, events in settled:
            self._publish(batch_id, events)

    async def _renew_leases(self) -> None:
        interval = max(self.queue.lease_seconds / 3, 0.05)
        while True:
            self.metrics.worker_seen(self.queue.worker_id)
            await asyncio.sleep(interval)
            row_ids = self._held_row_ids()
            if not row_ids:
                continue
            try:
                self.metrics.lease_renewals.inc(await asyncio.to_thread(self.queue.renew, row_ids))
            except Exception:
                # Not fatal: a lapsed row may run twice, and the fencing in ``complete`` stores one result.
                log.warning("renewing %d leases failed", len(row_ids), exc_info=True)

    def _held_row_ids(self) -> list[int]:
        """Rows this pool holds: claimed for a call, or returned and not yet stored."""
        storing = [chunk for chunk, _ in self._to_store + self._storing]
        chunks = [chunk for held in self._slots.values() for chunk in held] + storing
        return [row_id for chunk in chunks for row_id in chunk.row_ids]

    def _on_slot_done(self, task: asyncio.Task[None]) -> None:
        self._slots.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("a worker slot stopped", exc_info=task.exception())
        self._wake.set()

    async def _call(self, chunk: Chunk) -> list[EnhanceResult] | None:
        if not chunk.items:
            return None
        started = time.perf_counter()
        try:
            results = await self.provider.enhance_many(chunk.items)
        except Exception as exc:  # the provider broke as a whole: every row of the call fails, visibly
            log.exception("provider call failed for batch %s", chunk.batch_id)
            self.metrics.provider_call_errors.inc()
            results = [
                EnhanceResult(key=i.key, enhanced_prompt=None, techniques=(), error=f"provider error: {exc}")
                for i in chunk.items
            ]
        self.metrics.provider_latency.observe(time.perf_counter() - started)
        return results

    async def _store_pending(self) -> None:
        """Store every result waiting, in one transaction per round, until none is left."""
        while self._to_store:
            # A claim is on the provider's schedule; a store is not: let the claim have the database first.
            await self._claims_idle.wait()
            self._storing, self._to_store = self._to_store, []
            started = time.perf_counter()
            try:
                stored = await asyncio.to_thread(self.queue.complete_many, self._storing)
                self.metrics.store_seconds.observe(time.perf_counter() - started)
            except Exception:
                # The rows keep their lease and run again once it expires; say so loudly.
                batches = sorted({chunk.batch_id for chunk, _ in self._storing})
                log.exception("storing results of batches %s failed; rows will be retried", ", ".join(batches))
                continue
            finally:
                self._storing = []
            for batch in stored:
                self.metrics.rows_processed.labels("succeeded").inc(batch.succeeded)
                self.metrics.rows_processed.labels("failed").inc(batch.failed)
                self._publish(batch.batch_id, batch.events)

    def _publish(self, batch_id: str, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.publisher.publish(batch_id, event)
