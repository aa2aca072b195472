"""The asyncio worker pool that drains the work queue: up to ``concurrency`` batched provider calls in flight, their
leases renewed while they run, their results and events stored and published as each call returns."""

from __future__ import annotations

import asyncio
import contextlib
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

    While a call is in flight its rows' leases are renewed every third of the lease, so a short lease
    (quick recovery after a worker dies) never takes rows away from a worker that is merely slow.
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
        self._in_flight: dict[asyncio.Task[None], Chunk] = {}
        self._next_settle = 0.0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._runner = asyncio.create_task(self._run(), name="batchqa-dispatcher")
        self._renewer = asyncio.create_task(self._renew_leases(), name="batchqa-lease-renewer")

    async def stop(self, *, drain_seconds: float = 0.0) -> None:
        """Stop claiming, give calls in flight ``drain_seconds`` to finish, then hand their rows back."""
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        if self._in_flight and drain_seconds > 0:
            await asyncio.wait(set(self._in_flight), timeout=drain_seconds)
        unfinished = dict(self._in_flight)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        if unfinished:
            try:
                released = await asyncio.to_thread(self.queue.release, list(unfinished.values()))
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
                    self._in_flight[task] = chunk
                    task.add_done_callback(self._on_done)
                if chunks:
                    continue
                await self._settle_cancelled()
            # Woken by new work, a freed slot, or the timeout (which catches leases that lapse silently).
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that arrives as its
            # timeout fires, and stop() would then wait for ever for this loop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_poll_seconds):
                    await self._wake.wait()

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
            row_ids = [row_id for chunk in self._in_flight.values() for row_id in chunk.row_ids]
            if not row_ids:
                continue
            try:
                self.metrics.lease_renewals.inc(await asyncio.to_thread(self.queue.renew, row_ids))
            except Exception:
                # Not fatal: a lapsed row may run twice, and the fencing in ``complete`` stores one result.
                log.warning("renewing %d leases failed", len(row_ids), exc_info=True)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._wake.set()

    async def _process(self, chunk: Chunk) -> None:
        if not chunk.items:
            return
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
