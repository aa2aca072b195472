"""The provider-call ledger: opened when rows are claimed, closed with what became of each result."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import String, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from .models import CallOutcome, ProviderCall

_table = ProviderCall.__table__

_new_outcome = bindparam("b_outcome", type_=String())
# Built once: an entry closes once, except that lost may still turn into discarded.
_CLOSE = (
    update(_table)
    .where(
        and_(
            _table.c.batch_id == bindparam("b_batch"),
            _table.c.row_number == bindparam("b_row"),
            _table.c.attempt == bindparam("b_attempt"),
            or_(
                _table.c.outcome.is_(None),
                and_(_table.c.outcome == CallOutcome.LOST.value, _new_outcome == CallOutcome.DISCARDED.value),
            ),
        )
    )
    .values(outcome=_new_outcome, finished_at=bindparam("b_now"))
)


def open_calls(
    session: Session, batch_id: str, claims: Iterable[tuple[int, int]], *, worker_id: str, now: float
) -> None:
    """One open entry per claimed ``(row_number, attempt)``; the unique key refuses a second claim of an attempt."""
    entries = [
        {"batch_id": batch_id, "row_number": number, "attempt": attempt, "worker_id": worker_id, "started_at": now}
        for number, attempt in claims
    ]
    if entries:
        session.execute(_table.insert(), entries)


def close_calls(
    session: Session, batch_id: str, outcomes: Iterable[tuple[int, int, CallOutcome]], *, now: float
) -> None:
    """Record the fate of ``(row_number, attempt)`` entries.

    An entry closes once, except that a result arriving for an entry already closed as ``lost`` (its
    lease lapsed and another worker took the row) turns it into ``discarded``: the worker was slow,
    not gone, and its result was not stored.
    """
    params = [
        {"b_batch": batch_id, "b_row": number, "b_attempt": attempt, "b_outcome": outcome.value, "b_now": now}
        for number, attempt, outcome in outcomes
    ]
    if not params:
        return
    session.execute(_CLOSE, params)


def close_all_open(session: Session, outcome: CallOutcome, *, now: float) -> int:
    """Close every open entry (at the start of the only worker process, the earlier ones died with it)."""
    result = session.execute(
        update(_table).where(_table.c.outcome.is_(None)).values(outcome=outcome.value, finished_at=now)
    )
    return result.rowcount


def calls_for_batch(session: Session, batch_id: str) -> list[ProviderCall]:
    """Every ledger entry of a batch, by row then attempt."""
    query = (
        select(ProviderCall)
        .where(ProviderCall.batch_id == batch_id)
        .order_by(ProviderCall.row_number, ProviderCall.attempt)
    )
    return list(session.scalars(query))
