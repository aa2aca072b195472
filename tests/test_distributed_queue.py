"""The queue with several workers, on SQLite and PostgreSQL: disjoint claims, the ledger, leases, fairness."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from reference_backend.batches import apply_action, create_batch
from reference_backend.bus import LocalBus
from reference_backend.database import Store
from reference_backend.ingest import ParsedTable
from reference_backend.ledger import calls_for_batch
from reference_backend.metrics import Metrics
from reference_backend.models import Batch, Row, User
from reference_backend.provider import EnhanceResult, PromptInput
from reference_backend.work_queue import Chunk, WorkQueue
from reference_backend.worker_pool import WorkerPool

pytestmark = pytest.mark.area("Distributed mode")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.distributed)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    url = (
        f"sqlite:///{tmp_path / 'q.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    store = Store(url)
    store.create_schema()
    with store.write() as session:
        session.add_all(
            [User(id=1, email="a@x.test", password_hash="x"), User(id=2, email="b@x.test", password_hash="x")]
        )
    request.addfinalizer(store.dispose)
    return store


def _batch(store: Store, prompts: int, *, user_id: int = 1) -> str:
    table = ParsedTable(
        columns=["prompt"],
        prompt_column="prompt",
        rows=[{"prompt": f"p{i}"} for i in range(prompts)],
        source_format="text",
    )
    with store.write() as session:
        return create_batch(session, user_id=user_id, table=table, filename=None).id


def _queue(store: Store, worker: str, *, chunk: int = 2, lease: float = 60.0) -> WorkQueue:
    return WorkQueue(store, worker_id=worker, chunk_size=chunk, lease_seconds=lease, max_attempts=3)


def _ok(chunk: Chunk) -> list[EnhanceResult]:
    return [
        EnhanceResult(key=i.key, enhanced_prompt=i.prompt + "!", techniques=("role",), error=None) for i in chunk.items
    ]


def _failed(chunk: Chunk) -> list[EnhanceResult]:
    return [EnhanceResult.failed(i.key, "provider said no") for i in chunk.items]


def _outcomes(store: Store, batch_id: str) -> list[tuple[int, int, str | None]]:
    with store.read() as session:
        return [(c.row_number, c.attempt, c.outcome) for c in calls_for_batch(session, batch_id)]


async def _until_succeeded(store: Store, batch_id: str, rows: int, *, timeout_s: float = 10.0) -> bool:
    """Wait until the ledger shows every row of the batch succeeded once (polling it); False after ``timeout_s``."""
    for _ in range(round(timeout_s / 0.05)):
        if [o for _n, _a, o in await asyncio.to_thread(_outcomes, store, batch_id)] == ["succeeded"] * rows:
            return True
        await asyncio.sleep(0.05)
    return False


def _lapse_leases(store: Store) -> None:
    """What the passing of ``lease_seconds`` does, without waiting for it."""
    with store.write() as session:
        session.execute(update(Row).where(Row.status == "running").values(lease_until=0.0))


def test_concurrent_workers_claim_disjoint_rows_and_store_each_result_once(store: Store) -> None:
    batch_id = _batch(store, 60)
    claimed: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def work(name: str) -> None:
        queue = _queue(store, name, chunk=3)
        barrier.wait()
        while chunks := queue.claim_many(2):
            for chunk in chunks:
                claimed.setdefault(name, []).extend(chunk.row_ids)
                queue.complete(chunk, _ok(chunk))

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [row_id for ids in claimed.values() for row_id in ids]
    assert len(every) == len(set(every)) == 60, "a row was claimed by two workers at once"
    assert {(n, a, o) for n, a, o in _outcomes(store, batch_id)} == {(n, 1, "succeeded") for n in range(1, 61)}
    with store.read() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None and (batch.status, batch.succeeded) == ("completed", 60)


def test_late_result_after_a_takeover_is_discarded_and_the_ledger_says_so(store: Store) -> None:
    batch_id = _batch(store, 1)
    slow, fast = _queue(store, "slow"), _queue(store, "fast")
    stolen = slow.claim()
    assert stolen is not None
    _lapse_leases(store)
    retaken = fast.claim()
    assert retaken is not None and retaken.items[0].attempt == 2
    assert _outcomes(store, batch_id) == [(1, 1, "lost"), (1, 2, None)]
    assert fast.complete(retaken, _ok(retaken))[1:] == (1, 0)
    assert slow.complete(stolen, _ok(stolen))[1:] == (0, 0)
    assert _outcomes(store, batch_id) == [(1, 1, "discarded"), (1, 2, "succeeded")]


def test_renewed_lease_keeps_the_rows_from_other_workers(store: Store) -> None:
    _batch(store, 2)
    holder, other = _queue(store, "holder"), _queue(store, "other")
    chunk = holder.claim()
    assert chunk is not None
    _lapse_leases(store)
    assert holder.renew(chunk.row_ids) == 2
    assert other.claim() is None, "a renewed lease was taken over"
    assert holder.complete(chunk, _ok(chunk))[1:] == (2, 0)


def test_pool_renews_leases_while_a_slow_call_runs(store: Store) -> None:
    batch_id = _batch(store, 2)

    class GatedProvider:
        def __init__(self) -> None:
            self.release = asyncio.Event()

        async def enhance_many(self, items: Sequence[PromptInput]) -> list[EnhanceResult]:
            await self.release.wait()
            return [
                EnhanceResult(key=i.key, enhanced_prompt="ok " + i.prompt, techniques=(), error=None) for i in items
            ]

    def lease_until() -> float:
        with store.read() as session:
            return min(session.scalars(select(Row.lease_until).where(Row.status == "running")).all() or [0.0])

    async def scenario() -> None:
        provider = GatedProvider()
        pool = WorkerPool(_queue(store, "pool", lease=0.3), provider, LocalBus(), Metrics(), concurrency=1)
        await pool.start()
        try:
            first = 0.0
            for _ in range(200):  # condition-based: up to 10 s for the claim, then for a renewal past it
                current = await asyncio.to_thread(lease_until)
                first = first or current
                if first and current > first:
                    break
                await asyncio.sleep(0.05)
            assert first and current > first, "the lease was never renewed during the call"
            provider.release.set()
            for _ in range(200):
                if await asyncio.to_thread(_outcomes, store, batch_id) == [(1, 1, "succeeded"), (2, 1, "succeeded")]:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"results not stored once each: {_outcomes(store, batch_id)}")
        finally:
            await pool.stop()

    asyncio.run(scenario())


def test_users_take_turns_so_one_users_batches_cannot_starve_another(store: Store) -> None:
    first = _batch(store, 20, user_id=1)
    second = _batch(store, 20, user_id=1)
    small = _batch(store, 4, user_id=2)
    queue = _queue(store, "w")
    order = [chunk.batch_id for chunk in queue.claim_many(5)]
    # Per user first (1, 2, 1, 2, 1), then per batch within a user: the small batch is done in 4 claims.
    assert order == [first, small, second, small, first]


def test_provider_failures_and_retries_never_make_a_row_poison(store: Store) -> None:
    batch_id = _batch(store, 1)
    queue = _queue(store, "w")
    for _ in range(4):  # more failed attempts than max_attempts; each is followed by the user's retry
        chunk = queue.claim()
        assert chunk is not None and chunk.items, "a row that only ever failed in the provider was given up"
        queue.complete(chunk, _failed(chunk))
        with store.write() as session:
            apply_action(session, session.get(Batch, batch_id), "retry")  # type: ignore[arg-type]
    chunk = queue.claim()
    assert chunk is not None and chunk.items[0].attempt == 5
    queue.complete(chunk, _ok(chunk))
    assert [o for _n, _a, o in _outcomes(store, batch_id)] == ["failed"] * 4 + ["succeeded"]


def test_row_lost_with_its_worker_three_times_fails_as_poison(store: Store) -> None:
    batch_id = _batch(store, 1)
    for attempt in range(3):
        assert _queue(store, f"doomed-{attempt}").claim() is not None
        _lapse_leases(store)
    final = _queue(store, "last").claim()
    assert final is not None and final.items == []
    assert final.events[-1]["status"] == "failed"
    assert _outcomes(store, batch_id) == [(1, 1, "lost"), (1, 2, "lost"), (1, 3, "lost")]


def test_rows_handed_back_at_shutdown_are_claimable_at_once(store: Store) -> None:
    batch_id = _batch(store, 2)
    leaving = _queue(store, "leaving")
    chunk = leaving.claim()
    assert chunk is not None
    assert leaving.release([chunk]) == 2
    again = _queue(store, "next").claim()
    assert again is not None and [i.attempt for i in again.items] == [2, 2]
    assert _outcomes(store, batch_id)[:2] == [(1, 1, "released"), (1, 2, None)]


def test_rows_a_lost_worker_left_in_a_cancelled_batch_are_settled(store: Store) -> None:
    batch_id = _batch(store, 6)
    queue = _queue(store, "gone")
    assert queue.claim() is not None  # two rows in flight when the worker dies
    with store.write() as session:
        apply_action(session, session.get(Batch, batch_id), "cancel")  # type: ignore[arg-type]
    _lapse_leases(store)
    settled = _queue(store, "other").settle_cancelled()
    assert [batch for batch, _events in settled] == [batch_id]
    with store.read() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None and (batch.status, batch.cancelled, batch.processed) == ("cancelled", 6, 0)
    assert [o for _n, _a, o in _outcomes(store, batch_id)] == ["lost", "lost"]


def test_database_from_before_the_ledger_gains_the_new_column(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    store.create_schema()
    with store.write() as session:
        session.execute(text("ALTER TABLE rows DROP COLUMN lost_attempts"))
        session.execute(text("DROP TABLE provider_calls"))
    store.create_schema()
    with store.write() as session:
        session.add(User(id=1, email="a@x.test", password_hash="x"))
    _batch(store, 1)
    assert _queue(store, "w").claim() is not None
    store.dispose()


def test_a_lapsed_lease_is_never_taken_back_by_the_worker_still_holding_the_rows(store: Store) -> None:
    batch_id = _batch(store, 2)
    holder = _queue(store, "holder")
    chunk = holder.claim()
    assert chunk is not None
    _lapse_leases(store)  # a starved machine: the renewal came late
    assert holder.claim_many(1, holding=chunk.row_ids) == [], "the holder took its own rows back"
    other = _queue(store, "other").claim()
    assert other is not None and [i.attempt for i in other.items] == [2, 2], "another worker may take them"
    assert [o for _n, _a, o in _outcomes(store, batch_id)] == ["lost", None, "lost", None]


def test_a_batch_alone_in_the_queue_gets_every_free_slot_in_one_claim(store: Store) -> None:
    batch_id = _batch(store, 10)
    chunks = _queue(store, "w").claim_many(3)
    assert [sorted(chunk.row_numbers.values()) for chunk in chunks] == [[1, 2], [3, 4], [5, 6]]
    assert {chunk.batch_id for chunk in chunks} == {batch_id}
    assert [event["status"] for event in chunks[0].events] == ["running"], "the batch's start is published once"
    assert chunks[1].events == chunks[2].events == []


def test_results_of_calls_returning_together_are_stored_with_one_event_per_batch(store: Store) -> None:
    first, second = _batch(store, 4), _batch(store, 4, user_id=2)
    queue = _queue(store, "w")
    chunks = queue.claim_many(4)
    assert sorted(chunk.batch_id for chunk in chunks) == sorted([first, first, second, second])
    with store.read() as session:
        seq_before = {b.id: b.seq for b in session.scalars(select(Batch))}
    stored = queue.complete_many([(chunk, _ok(chunk)) for chunk in chunks])
    assert [(s.batch_id, s.succeeded, s.failed) for s in stored] == [(b, 4, 0) for b in sorted([first, second])]
    for s in stored:
        assert [e["type"] for e in s.events] == ["progress", "completed"], s.events
        assert [e["seq"] for e in s.events] == [seq_before[s.batch_id] + 1, seq_before[s.batch_id] + 2]
    for batch_id in (first, second):
        assert [o for _n, _a, o in _outcomes(store, batch_id)] == ["succeeded"] * 4


def test_a_slots_next_call_starts_before_the_previous_results_are_stored(store: Store) -> None:
    batch_id = _batch(store, 6)
    storing, release_store = threading.Event(), threading.Event()

    class SlowStore(WorkQueue):
        def complete_many(self, done):  # type: ignore[no-untyped-def]
            storing.set()
            release_store.wait(30)
            return super().complete_many(done)

    class CountingProvider:
        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        async def enhance_many(self, items: Sequence[PromptInput]) -> list[EnhanceResult]:
            self.calls.append([i.prompt for i in items])
            return [
                EnhanceResult(key=i.key, enhanced_prompt="ok " + i.prompt, techniques=(), error=None) for i in items
            ]

    async def scenario() -> None:
        provider = CountingProvider()
        queue = SlowStore(store, worker_id="pool", chunk_size=2, lease_seconds=60, max_attempts=3)
        pool = WorkerPool(queue, provider, LocalBus(), Metrics(), concurrency=1)
        await pool.start()
        try:
            for _ in range(200):  # condition-based: up to 10 s
                if storing.is_set() and len(provider.calls) >= 2:
                    break
                await asyncio.sleep(0.05)
            assert storing.is_set(), "the first call's results were never stored"
            assert len(provider.calls) >= 2, "the second call waited for the first call's results to be stored"
            release_store.set()
            await _until_succeeded(store, batch_id, 6)
        finally:
            release_store.set()
            await pool.stop()
        assert [o for _n, _a, o in _outcomes(store, batch_id)] == ["succeeded"] * 6
        assert provider.calls == [["p0", "p1"], ["p2", "p3"], ["p4", "p5"]]

    asyncio.run(scenario())


def test_slots_whose_calls_return_together_share_one_claim(store: Store) -> None:
    batch_id = _batch(store, 12)
    claims: list[int] = []

    class CountingQueue(WorkQueue):
        def claim_round(self, max_chunks, *, holding=()):  # type: ignore[no-untyped-def]
            claimed = super().claim_round(max_chunks, holding=holding)
            if claimed.chunks:
                claims.append(len(claimed.chunks))
            return claimed

    class WaveProvider:
        """Every call waits for its wave; a released wave's calls all return in the same turn of the loop."""

        def __init__(self) -> None:
            self.calls = 0
            self.wave = asyncio.Event()

        async def enhance_many(self, items: Sequence[PromptInput]) -> list[EnhanceResult]:
            self.calls += 1
            await self.wave.wait()
            return [EnhanceResult(key=i.key, enhanced_prompt="ok", techniques=(), error=None) for i in items]

        def release_wave(self) -> None:
            wave, self.wave = self.wave, asyncio.Event()
            wave.set()

    async def calls_reach(provider: WaveProvider, calls: int) -> None:
        for _ in range(1000):  # condition-based: up to 10 s
            if provider.calls >= calls:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{provider.calls} calls started, expected {calls}")

    async def scenario() -> None:
        provider = WaveProvider()
        queue = CountingQueue(store, worker_id="pool", chunk_size=2, lease_seconds=60, max_attempts=3)
        pool = WorkerPool(queue, provider, LocalBus(), Metrics(), concurrency=3)
        await pool.start()
        try:
            await calls_reach(provider, 3)
            assert claims == [3], "the free slots' first chunks were not claimed together"
            provider.release_wave()
            await calls_reach(provider, 6)
            assert claims == [3, 3], f"three calls that returned together claimed {claims[1:]}, not once for three"
            provider.release_wave()
            await _until_succeeded(store, batch_id, 12)
        finally:
            provider.release_wave()
            await pool.stop()
        assert [o for _n, _a, o in _outcomes(store, batch_id)] == ["succeeded"] * 12

    asyncio.run(scenario())


def test_a_pool_that_took_the_last_rows_claims_again_only_when_work_is_signalled(store: Store) -> None:
    """Once a claim took the queue's last rows, the slots that end after it do not claim again (that claim would find
    nothing and only delay the store of the results just returned); new work, signalled, is still picked up."""
    claims: list[int] = []

    class CountingQueue(WorkQueue):
        def claim_round(self, max_chunks, *, holding=()):  # type: ignore[no-untyped-def]
            claimed = super().claim_round(max_chunks, holding=holding)
            claims.append(sum(len(chunk.items) for chunk in claimed.chunks))
            return claimed

    class InstantProvider:
        async def enhance_many(self, items: Sequence[PromptInput]) -> list[EnhanceResult]:
            return [EnhanceResult(key=i.key, enhanced_prompt="ok", techniques=(), error=None) for i in items]

    async def succeeded(batch_id: str, rows: int) -> None:
        # Up to 10 s, far below the idle poll below.
        assert await _until_succeeded(store, batch_id, rows), f"batch {batch_id} did not finish: was a signal lost?"

    async def scenario() -> None:
        queue = CountingQueue(store, worker_id="pool", chunk_size=2, lease_seconds=60, max_attempts=3)
        # An idle poll longer than the test: only a signal (notify) can start the later batches.
        pool = WorkerPool(queue, InstantProvider(), LocalBus(), Metrics(), concurrency=3, idle_poll_seconds=120)
        first = _batch(store, 6)
        await pool.start()
        try:
            await succeeded(first, 6)
            for rows in (6, 5):
                batch_id = await asyncio.to_thread(_batch, store, rows)
                pool.notify()
                await succeeded(batch_id, rows)
        finally:
            await pool.stop()

    asyncio.run(scenario())
    # One claim per batch, each taking the whole batch: none found nothing.
    assert claims == [6, 6, 5], f"rows taken by each claim: {claims}"


@pytest.mark.parametrize(("rows", "exhausted"), [(4, True), (3, True), (5, False)])
def test_a_claim_says_whether_it_took_the_last_claimable_rows(store: Store, rows: int, exhausted: bool) -> None:
    _batch(store, rows)
    claimed = _queue(store, "w").claim_round(2)  # up to 4 rows
    assert (sum(len(c.items) for c in claimed.chunks), claimed.exhausted) == (min(rows, 4), exhausted)


def test_a_claim_is_not_exhausted_while_another_batch_has_rows(store: Store) -> None:
    _batch(store, 2)
    _batch(store, 4, user_id=2)
    claimed = _queue(store, "w").claim_round(2)  # one chunk of each: the second batch has rows left
    assert [len(c.items) for c in claimed.chunks] == [2, 2] and not claimed.exhausted
    assert _queue(store, "w").claim_round(2).exhausted
