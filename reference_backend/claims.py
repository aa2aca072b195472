"""One claim: up to so many chunks of rows in one transaction, taking turns between users, then their batches.

The next chunk comes from the user served least recently (the latest claim on any of their batches), then from
that user's batch served least recently: one user's 1000-row batch, or ten of them, cannot starve another user's
10-row batch. Claims of one batch by several workers run side by side: each takes rows nobody holds. A batch
whose row someone else writes at the moment (another claim moving its turn, a store) is served without moving
its turn, so the claim passes it over until it has served every other candidate once; a batch whose rows are all
being taken by another claim is left to it. The rows of every turn are written once, when the claim ends, with
their ledger entries.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from . import ledger
from .batches import finish_if_done, record_event, set_status
from .lifecycle import BatchStatus, RowStatus
from .models import Batch, CallOutcome, Row
from .provider import PromptInput
from .queue_statements import (
    ANY_CLAIMABLE,
    CANDIDATE_WAITING,
    CANDIDATES_SHARED,
    CANDIDATES_TO_WRITE,
    NEXT_ROWS,
    TAKE_ROWS,
)


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
class Claimed:
    """What one claim took, and whether it took the last of what was claimable then (``exhausted``).

    An exhausted claim lets a worker skip its next claim until work is signalled: that claim would find nothing
    and only delay the store of the results just returned.
    """

    chunks: list[Chunk]
    exhausted: bool


class ClaimRound:
    """One claim's turns, in the session of its transaction: the batches it passed over, the rows it chose."""

    def __init__(
        self,
        session: Session,
        *,
        worker_id: str,
        chunk_size: int,
        lease_seconds: float,
        max_attempts: int,
        holding: Collection[int],
        now: float,
    ) -> None:
        self.session = session
        self.worker_id = worker_id
        self.chunk_size = chunk_size
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.now = now
        # ``holding``: rows this process still holds, never taken back even when their lease lapsed; ``passed``: the
        # batches the candidate queries leave out; ``taken``: the rows chosen so far, written when the claim ends.
        self.params: dict[str, Any] = {"now": now, "holding": list(holding), "passed": [], "taken": []}
        self.opened: dict[str, list[tuple[int, int]]] = {}  # per batch, the (row number, attempt) claimed
        self.shared: list[str] = []  # served without moving their turn: passed over until every candidate was
        self.spent: list[str] = []  # no row left that this claim could take

    def run(self, max_chunks: int) -> Claimed:
        """Up to ``max_chunks`` chunks, their rows taken and their ledger entries opened."""
        chunks: list[Chunk] = []
        last_had_more = True
        turn = 0
        while turn < max_chunks:
            batch, writable, alone = self._next_candidate(first=turn == 0)
            if batch is None:
                break
            # A batch alone in the queue has no one to take turns with: its rows for every remaining turn are
            # chosen at once, in one statement, instead of one round per chunk.
            share = max_chunks - turn if alone else 1
            # Strictly increasing, so batches served in one transaction still take turns.
            taken = self._choose_rows(batch, share, writable=writable, served_at=self.now + turn * 1e-6)
            chunks.extend(chunk for chunk in taken.chunks if chunk.items or chunk.events)
            if not writable:
                self.shared.append(batch.id)
            if any(chunk.items for chunk in taken.chunks):
                turn += share
            else:
                self.spent.append(batch.id)
            last_had_more = taken.more
        self._take()
        # Asked only when this claim seems to have taken the last rows: it found no candidate, or the last batch it
        # served had none left.
        exhausted = (turn < max_chunks or not last_had_more) and not self.session.scalar(ANY_CLAIMABLE, self.params)
        return Claimed(chunks, exhausted)

    def _next_candidate(self, *, first: bool) -> tuple[Batch | None, bool, bool]:
        """The fairest batch to serve next: whether this claim may write its row, and whether it is alone."""
        session, params = self.session, self.params
        params["passed"] = self.shared + self.spent
        found = session.scalars(CANDIDATES_TO_WRITE, params).all()
        if found:
            return found[0], True, len(found) == 1 and not self.shared
        found = session.scalars(CANDIDATES_SHARED, params).all()
        if not found and self.shared:
            # Every candidate left was served once without moving its turn: take turns among them again.
            self.shared.clear()
            params["passed"] = list(self.spent)
            found = session.scalars(CANDIDATES_SHARED, params).all()
        if not found and first:
            # Every candidate is held by a user's action (pause, cancel, retry) for a few ms: wait for the fairest
            # one instead of idling until the next poll. Waiting while holding no lock cannot deadlock.
            found = session.scalars(CANDIDATE_WAITING, params).all()
        if not found:
            return None, False, False
        return found[0], False, len(found) == 1 and not self.shared

    def _choose_rows(self, batch: Batch, chunks: int, *, writable: bool, served_at: float) -> _Taken:
        """Choose up to ``chunks`` chunks of the batch's claimable rows (one SELECT), taken when the claim ends.

        The batch's own row is written (its turn moved to ``served_at``, its start recorded) only when it is
        ``writable``: this claim holds it and no one else writes it. Otherwise the claim goes on without it, and
        leaves alone rows that would fail as poison (that needs the batch's counters): another claim takes them.
        One row more than wanted is read, not taken, to tell whether any was left.
        """
        session, params, now = self.session, self.params, self.now
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
            poison = lost_attempts >= self.max_attempts
            if poison and not writable:
                continue
            if lapsed:
                lost.append((row.row_number, row.attempts, CallOutcome.LOST))
            if poison:
                # A row that keeps taking its worker down is poison: fail it, don't loop on it.
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
            attempt = row.attempts + 1
            taken.append(row.id)
            key = str(row.id)
            items.append(PromptInput(key=key, prompt=row.prompt, category=row.category, attempt=attempt))
            row_numbers[key] = row.row_number
            self.opened.setdefault(batch.id, []).append((row.row_number, attempt))
        params["taken"] = [*params["taken"], *taken]
        ledger.close_calls(session, batch.id, lost, now=now)
        if poisoned:
            session.execute(update(Row), poisoned)  # one executemany, keyed by primary key
            batch.failed += len(poisoned)
            events.append(record_event(session, batch, "progress"))
            events.extend(finish_if_done(session, batch))
        size = self.chunk_size
        claimed = [
            Chunk(batch.id, part, row_numbers={i.key: row_numbers[i.key] for i in part})
            for part in (items[start : start + size] for start in range(0, len(items), size))
        ] or [Chunk(batch.id, [])]
        claimed[0].events = events
        return _Taken(claimed, more=more)

    def _take(self) -> None:
        """Write the rows of every turn in one statement, and their ledger entries, one statement per batch."""
        if self.params["taken"]:
            lease_until = self.now + self.lease_seconds
            values = {"ids": self.params["taken"], "worker": self.worker_id, "lease_until": lease_until}
            self.session.execute(TAKE_ROWS, values)
        for batch_id, claims in self.opened.items():
            ledger.open_calls(self.session, batch_id, claims, worker_id=self.worker_id, now=self.now)


@dataclass
class _Taken:
    """One batch's part of a claim: its chunks, and whether it had rows left."""

    chunks: list[Chunk]
    more: bool
