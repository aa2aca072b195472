"""Batch operations shared by the routes and the worker pool: create, view, act, record events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from . import faults
from .errors import NotFound
from .ingest import ParsedTable
from .lifecycle import ACTION_TARGET, BatchStatus, RowStatus, check_transition, final_status
from .models import Batch, Event, Row, utcnow
from .notifications.triggers import record_notifications

TERMINAL_EVENT_TYPES = {
    BatchStatus.COMPLETED: "completed",
    BatchStatus.COMPLETED_WITH_ERRORS: "completed",
    BatchStatus.FAILED: "error",
    BatchStatus.CANCELLED: "status",
}


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; they were written as UTC.
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def eta_seconds(batch: Batch, now: datetime | None = None) -> float | None:
    """Remaining rows divided by the rate seen since the current running period began."""
    status = BatchStatus(batch.status)
    if status.is_terminal:
        return 0.0
    if status is not BatchStatus.RUNNING or batch.run_started_at is None:
        return None
    done_in_run = batch.processed - batch.run_base_processed
    if done_in_run <= 0:
        return None
    elapsed = ((now or utcnow()) - _aware(batch.run_started_at)).total_seconds()
    remaining = batch.total - batch.processed - batch.cancelled
    if elapsed <= 0:
        return None
    return round(remaining * elapsed / done_in_run, 1)


def status_view(batch: Batch) -> dict[str, Any]:
    return {
        "batch_id": batch.id,
        "status": batch.status,
        "filename": batch.filename,
        "total": batch.total,
        "processed": batch.succeeded if faults.on("miscount") else batch.processed,
        "succeeded": batch.succeeded,
        "failed": batch.failed,
        "cancelled": batch.cancelled,
        "percent": _percent(batch.processed, batch.total),
        "eta_seconds": eta_seconds(batch),
        "seq": batch.seq,
        "created_at": _iso(batch.created_at),
        "started_at": _iso(batch.started_at),
        "finished_at": _iso(batch.finished_at),
        "updated_at": _iso(batch.updated_at),
    }


def _percent(processed: int, total: int) -> float:
    if not total:
        return 0.0
    if faults.on("wrong_percent"):
        return float(100 * processed // total)
    return round(100.0 * processed / total, 1)


def record_event(session: Session, batch: Batch, event_type: str) -> dict[str, Any]:
    """Bump the batch's sequence and store an event carrying its current view.

    ``event_time`` (when it happened, for the socket's lag measurement) rides in the event only; the
    status body keeps its schema.
    """
    now = utcnow()
    batch.seq += 1
    batch.updated_at = now
    payload = status_view(batch)
    message = {"type": event_type, **payload, "event_time": _iso(now)}
    session.add(Event(batch_id=batch.id, seq=batch.seq, type=event_type, payload=message))
    record_notifications(session, batch, event_type)
    return message


def _find_column(columns: list[str], name: str) -> str | None:
    for column in columns:
        if column.strip().lower() == name:
            return column
    return None


def create_batch(session: Session, *, user_id: int, table: ParsedTable, filename: str | None) -> Batch:
    """Store the batch and its rows; a row the table marks failed is stored failed, with its reason.

    Such a row never reaches the provider (its ``attempts`` stays 0, which is how ``retry`` tells it
    from a provider failure), and a batch made only of them finishes at once.
    """
    category_column = _find_column(table.columns, "category")
    rows = table.rows[1:] if faults.on("drop_first_row") and len(table.rows) > 1 else table.rows
    skipped = len(table.rows) - len(rows)
    failures = {number - skipped: failure for number, failure in table.failures.items() if number > skipped}
    batch = Batch(
        id=uuid.uuid4().hex,
        user_id=user_id,
        filename=filename,
        source_format=table.source_format,
        columns=list(table.columns),
        prompt_column=table.prompt_column,
        category_column=category_column,
        status=BatchStatus.QUEUED.value,
        total=len(rows),
        succeeded=0,
        failed=len(failures),
        cancelled=0,
        seq=0,
        run_base_processed=0,
        last_claimed_at=0.0,
    )
    session.add(batch)
    session.flush()
    session.execute(
        Row.__table__.insert(),
        [
            {
                "batch_id": batch.id,
                "row_number": number,
                "fields": fields,
                "prompt": fields[table.prompt_column],
                "category": fields.get(category_column) if category_column else None,
                "status": RowStatus.FAILED.value if number in failures else RowStatus.PENDING.value,
                "attempts": 0,
                "error": str(failures[number]) if number in failures else None,
            }
            for number, fields in enumerate(rows, start=1)
        ],
    )
    record_event(session, batch, "status")
    finish_if_done(session, batch)
    return batch


def get_owned_batch(session: Session, batch_id: str, user_id: int, *, lock: bool = False) -> Batch:
    """The batch if this user owns it; another user's batch is as missing as a nonexistent one."""
    query = select(Batch).where(Batch.id == batch_id)
    if not faults.on("leak_batches"):
        query = query.where(Batch.user_id == user_id)
    if lock:
        query = query.with_for_update()
    batch = session.scalars(query).first()
    if batch is None:
        raise NotFound(f"Batch {batch_id} was not found.", code="batch_not_found", batch_id=batch_id)
    return batch


def list_batches(session: Session, user_id: int) -> list[Batch]:
    query = select(Batch).where(Batch.user_id == user_id).order_by(Batch.created_at.desc(), Batch.id)
    return list(session.scalars(query))


def set_status(session: Session, batch: Batch, target: BatchStatus, *, action: str | None = None) -> dict[str, Any]:
    """Move a batch to ``target`` (checked against the transition table) and record the event."""
    check_transition(BatchStatus(batch.status), target, action=action)
    now = utcnow()
    batch.status = target.value
    if target is BatchStatus.RUNNING:
        batch.started_at = batch.started_at or now
        batch.run_started_at = now
        batch.run_base_processed = batch.processed
    else:
        batch.run_started_at = None
    if target.is_terminal:
        batch.finished_at = now
    elif target is BatchStatus.QUEUED:
        batch.finished_at = None
    return record_event(session, batch, TERMINAL_EVENT_TYPES.get(target, "status"))


def apply_action(session: Session, batch: Batch, action: str) -> list[dict[str, Any]]:
    """Pause, resume, cancel or retry; returns the events it recorded, for publishing."""
    target = ACTION_TARGET[action]
    current = BatchStatus(batch.status)
    if action == "resume" and current is BatchStatus.PAUSED and batch.started_at is None:
        target = BatchStatus.QUEUED  # paused before any row ran: back in the queue, not "running"
    check_transition(current, target, action=action)
    if (action == "pause" and faults.on("ignore_pause")) or (action == "cancel" and faults.on("ignore_cancel")):
        return []
    if action == "cancel":
        result = session.execute(
            update(Row)
            .where(Row.batch_id == batch.id, Row.status == RowStatus.PENDING.value)
            .values(status=RowStatus.CANCELLED.value)
        )
        batch.cancelled += result.rowcount
    elif action == "retry":
        again = [RowStatus.FAILED.value] + ([RowStatus.SUCCEEDED.value] if faults.on("retry_all_rows") else [])
        # A row refused at upload (never attempted) would fail the same way again: it stays failed.
        result = session.execute(
            update(Row)
            .where(Row.batch_id == batch.id, Row.status.in_(again), Row.attempts > 0)
            .values(status=RowStatus.PENDING.value, error=None, enhanced_prompt=None, techniques=None)
        )
        if faults.on("retry_all_rows"):
            batch.succeeded = batch.failed = 0
        else:
            batch.failed -= result.rowcount
    events = [set_status(session, batch, target, action=action)]
    if action in ("resume", "retry"):
        events.extend(finish_if_done(session, batch))
    return events


def rows_in_flight(session: Session, batch_id: str) -> int:
    query = select(func.count()).where(Row.batch_id == batch_id, Row.status == RowStatus.RUNNING.value)
    return session.scalar(query) or 0


def finish_if_done(session: Session, batch: Batch) -> list[dict[str, Any]]:
    """Close a batch whose every row is settled; a cancelled batch stays cancelled."""
    status = BatchStatus(batch.status)
    early = faults.on("complete_early") and batch.processed > 0
    if status.is_terminal or (batch.processed + batch.cancelled < batch.total and not early):
        return []
    if rows_in_flight(session, batch.id) and not early:
        return []
    target = final_status(total=batch.total, succeeded=batch.succeeded, failed=batch.failed)
    return [set_status(session, batch, target)]
