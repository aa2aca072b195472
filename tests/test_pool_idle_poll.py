"""The worker pool's idle poll: a pool whose every slot is busy does not take its timer for a sign of work."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from reference_backend.batches import create_batch
from reference_backend.bus import LocalBus
from reference_backend.database import Store
from reference_backend.ingest import ParsedTable
from reference_backend.metrics import Metrics
from reference_backend.models import Batch, User
from reference_backend.provider import EnhanceResult, PromptInput
from reference_backend.work_queue import Claimed, WorkQueue
from reference_backend.worker_pool import WorkerPool

pytestmark = pytest.mark.area("Queue and states")

IDLE_POLL_SECONDS = 0.2
# The calls outlast several idle polls.
CALL_SECONDS = 5 * IDLE_POLL_SECONDS


def test_a_busy_pool_that_took_the_last_rows_stores_them_without_claiming_again(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    store.create_schema()
    with store.write() as session:
        session.add(User(id=1, email="a@x.test", password_hash="x"))
        session.flush()
        table = ParsedTable(
            columns=["prompt"],
            prompt_column="prompt",
            rows=[{"prompt": f"p{i}"} for i in range(6)],
            source_format="text",
        )
        batch_id = create_batch(session, user_id=1, table=table, filename=None).id
    journal: list[str] = []

    class JournalQueue(WorkQueue):
        def claim_round(self, max_chunks, *, holding=()) -> Claimed:  # type: ignore[no-untyped-def]
            claimed = super().claim_round(max_chunks, holding=holding)
            journal.append(f"claimed {sum(len(c.items) for c in claimed.chunks)}")
            return claimed

        def complete_many(self, done):  # type: ignore[no-untyped-def]
            journal.append("storing")
            return super().complete_many(done)

    class SlowProvider:
        async def enhance_many(self, items: Sequence[PromptInput]) -> list[EnhanceResult]:
            await asyncio.sleep(CALL_SECONDS)  # the call's own duration, several idle polls long
            return [EnhanceResult(key=i.key, enhanced_prompt="ok", techniques=(), error=None) for i in items]

    def status() -> str | None:
        with store.read() as session:
            batch = session.get(Batch, batch_id)
            return batch.status if batch is not None else None

    async def finished() -> bool:
        for _ in range(400):  # condition-based: up to 20 s
            if await asyncio.to_thread(status) == "completed":
                return True
            await asyncio.sleep(0.05)
        return False

    async def scenario() -> None:
        queue = JournalQueue(store, worker_id="pool", chunk_size=2, lease_seconds=60, max_attempts=3)
        pool = WorkerPool(
            queue, SlowProvider(), LocalBus(), Metrics(), concurrency=3, idle_poll_seconds=IDLE_POLL_SECONDS
        )
        await pool.start()
        try:
            assert await finished(), "the batch did not finish"
        finally:
            await pool.stop()

    try:
        asyncio.run(scenario())
    finally:
        store.dispose()
    # One claim took all six rows; the three slots ending together store them without claiming first.
    assert journal[: journal.index("storing") + 1] == ["claimed 6", "storing"], journal
