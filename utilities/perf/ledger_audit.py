"""The ledger audit: read the reference backend's tables (batches, rows, provider_calls) with plain SQL and say, row
by row, whether anything was lost or stored twice; and which workers hold a call in flight (to kill one mid-call)."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from sqlalchemy import bindparam, create_engine, text

from utilities.client.api import TERMINAL_STATUSES
from utilities.procs.services import Cluster, WorkerProcess

log = logging.getLogger(__name__)

STORED = frozenset({"succeeded", "failed"})
POISON_PREFIX = "gave up after"


@dataclass
class LedgerReport:
    """What the ledger says about some batches: counts, re-runs and every inconsistency found."""

    batches: int = 0
    rows: int = 0
    calls: int = 0
    stored_results: int = 0
    reruns: int = 0
    retried_calls: int = 0
    lost_calls: int = 0
    discarded_calls: int = 0
    poison_rows: int = 0
    duplicates: int = 0
    lost_rows: int = 0
    found: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return list(self.found)

    def summary(self) -> str:
        return (
            f"{self.rows} rows, {self.calls} calls ({self.retried_calls} retries of failed rows, "
            f"{self.lost_calls} lost with a worker, {self.discarded_calls} discarded late), "
            f"{self.stored_results} stored; lost rows {self.lost_rows}, duplicated results {self.duplicates}, "
            f"poison {self.poison_rows}, problems {len(self.found)}"
        )


def workers_with_calls_in_flight(database_url: str, batch_id: str) -> set[str]:
    """The ids of the workers that hold an open ledger entry (a provider call not yet closed) of ``batch_id``."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT DISTINCT worker_id FROM provider_calls WHERE batch_id = :batch AND outcome IS NULL"),
                {"batch": batch_id},
            ).scalars()
            return set(found)
    finally:
        engine.dispose()


def a_worker_mid_call(cluster: Cluster, batch_id: str, rng: random.Random, *, timeout: float = 30.0) -> WorkerProcess:
    """A live worker (chosen by ``rng``) that has a call of ``batch_id`` in flight right now, polled from the
    ledger: a worker that has only just started may not have claimed anything yet, and killing it proves
    nothing about calls lost mid-flight."""
    deadline = time.monotonic() + timeout
    while True:
        busy = workers_with_calls_in_flight(cluster.database_url, batch_id)
        candidates = [w for w in cluster.workers if w.worker_id in busy]
        if candidates:
            return rng.choice(candidates)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no worker had a call of {batch_id} in flight within {timeout:.0f} s")
        time.sleep(0.05)  # a poll interval, not a synchronisation


def audit(database_url: str, batch_ids: Sequence[str], *, expect_terminal: bool = True) -> LedgerReport:
    """Check rows, counters and the provider-call ledger of ``batch_ids``.

    A row's stored results (ledger entries ``succeeded``/``failed``) may be failures followed by at
    most one success (a retry runs failed rows only); the row's state must be its last stored result;
    the batch counters must equal its rows' states; in a finished batch no row may be pending or
    running and no ledger entry open. A row failed as poison must show its lost attempts.
    """
    report = LedgerReport()
    ids = {"ids": list(batch_ids)}
    expanding = bindparam("ids", expanding=True)
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            batches = conn.execute(
                text("SELECT id, status, total, succeeded, failed, cancelled FROM batches WHERE id IN :ids").bindparams(
                    expanding
                ),
                ids,
            ).all()
            rows = conn.execute(
                text(
                    "SELECT batch_id, row_number, status, enhanced_prompt, error, lost_attempts FROM rows "
                    "WHERE batch_id IN :ids ORDER BY batch_id, row_number"
                ).bindparams(expanding),
                ids,
            ).all()
            calls = conn.execute(
                text(
                    "SELECT batch_id, row_number, attempt, outcome FROM provider_calls "
                    "WHERE batch_id IN :ids ORDER BY batch_id, row_number, attempt"
                ).bindparams(expanding),
                ids,
            ).all()
    finally:
        engine.dispose()
    by_row: dict[tuple[str, int], list[tuple[int, str | None]]] = {}
    for batch_id, number, attempt, outcome in calls:
        by_row.setdefault((batch_id, number), []).append((attempt, outcome))
    report.batches, report.rows, report.calls = len(batches), len(rows), len(calls)
    report.lost_calls = sum(1 for c in calls if c.outcome == "lost")
    report.discarded_calls = sum(1 for c in calls if c.outcome == "discarded")
    report.stored_results = sum(1 for c in calls if c.outcome in STORED)
    report.reruns = sum(max(len(entries) - 1, 0) for entries in by_row.values())
    report.retried_calls = sum(
        1 for entries in by_row.values() for before, _after in pairwise(entries) if before[1] == "failed"
    )
    missing = set(batch_ids) - {b.id for b in batches}
    report.found += [f"batch {b} does not exist" for b in sorted(missing)]
    rows_of: dict[str, list] = {}  # type: ignore[type-arg]
    for row in rows:
        rows_of.setdefault(row.batch_id, []).append(row)
    for batch in batches:
        _audit_batch(report, batch, rows_of.get(batch.id, []), by_row, expect_terminal=expect_terminal)
    return report


def _audit_batch(report, batch, rows, by_row, *, expect_terminal: bool) -> None:  # type: ignore[no-untyped-def]
    name = f"batch {batch.id[:8]}"
    terminal = batch.status in TERMINAL_STATUSES
    if expect_terminal and not terminal:
        report.found.append(f"{name} is {batch.status}, not finished")
    if len(rows) != batch.total:
        report.found.append(f"{name} has {len(rows)} rows for a total of {batch.total}")
    states = Counter(row.status for row in rows)
    for state in ("succeeded", "failed", "cancelled"):
        if states[state] != getattr(batch, state):
            report.found.append(f"{name} counts {getattr(batch, state)} {state} but {states[state]} rows are")
    if terminal:
        unsettled = [r.row_number for r in rows if r.status in ("pending", "running")]
        report.lost_rows += len(unsettled)
        if unsettled:
            report.found.append(f"{name} is {batch.status} but rows {unsettled[:10]} are still pending or running")
    for row in rows:
        entries = by_row.get((batch.id, row.row_number), [])
        stored = [outcome for _attempt, outcome in entries if outcome in STORED]
        if "succeeded" in stored and stored.index("succeeded") != len(stored) - 1:
            report.duplicates += 1
            report.found.append(f"{name} row {row.row_number}: a result stored after its success: {stored}")
        if terminal and any(outcome is None for _attempt, outcome in entries):
            report.found.append(f"{name} row {row.row_number}: a provider call still open in a finished batch")
        poison = row.status == "failed" and (row.error or "").startswith(POISON_PREFIX)
        if poison:
            report.poison_rows += 1
            lost = sum(1 for _attempt, outcome in entries if outcome == "lost")
            if lost < row.lost_attempts or row.lost_attempts < 1:
                report.found.append(f"{name} row {row.row_number}: failed as poison but the ledger shows {lost} lost")
        elif row.status in STORED and (not stored or stored[-1] != row.status):
            report.found.append(f"{name} row {row.row_number} is {row.status}; its stored results are {stored}")
        if row.status == "succeeded" and not row.enhanced_prompt:
            report.found.append(f"{name} row {row.row_number} succeeded without an enhanced prompt")
