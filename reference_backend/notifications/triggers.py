"""Turn batch events into notifications: which fire, for whom, on which channels (once each)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..lifecycle import BatchStatus
from ..models import Batch, User
from .models import Notification, OutboxEntry
from .preferences import load_preferences

log = logging.getLogger(__name__)

MILESTONES = (25, 50, 75)
EXTERNAL_CHANNELS = ("email", "webhook")


def fired_events(batch: Batch, message_type: str) -> list[str]:
    """The notification events a batch event makes due; deduplication happens when they are stored."""
    status = BatchStatus(batch.status)
    if status.is_terminal:
        return [status.value]
    events = []
    if message_type == "status" and status is BatchStatus.RUNNING:
        events.append("started")
    if message_type == "progress" and batch.processed + batch.cancelled < batch.total:
        # Only the highest milestone reached: a jump from 20 % to 80 % says "75 %", not three things at once;
        # and only one above what the batch has announced (progress moves forward, and after a retry
        # lowers the count, crossing 75 % again is not news). Progress that settles the last rows finishes
        # the batch in the same transaction: its outcome is the news, not a milestone beside it.
        reached = [m for m in MILESTONES if batch.processed * 100 >= m * batch.total]
        if reached and reached[-1] > (batch.milestone or 0):
            events.append(f"progress_{reached[-1]}")
    return events


def _milestone(event: str) -> int | None:
    return int(event.removeprefix("progress_")) if event.startswith("progress_") else None


def describe(batch: Batch, event: str) -> tuple[str, str]:
    name = batch.filename or "pasted prompts"
    counts = f"{batch.succeeded} succeeded, {batch.failed} failed, {batch.cancelled} cancelled of {batch.total}"
    titles = {
        "started": f"Batch started: {name}",
        "completed": f"Batch completed: {name}",
        "completed_with_errors": f"Batch completed with errors: {name}",
        "failed": f"Batch failed: {name}",
        "cancelled": f"Batch cancelled: {name}",
    }
    if event.startswith("progress_"):
        return (
            f"Batch {event.removeprefix('progress_')}% done: {name}",
            f"{batch.processed} of {batch.total} processed.",
        )
    return titles[event], f"{name}: {counts}."


def record_notifications(session: Session, batch: Batch, message_type: str) -> int:
    """Store what this batch event makes due, in the caller's transaction; returns how many were new.

    In the same transaction as the event itself, so a notification is neither lost (crash after the
    batch moved) nor invented (the batch move rolled back).
    """
    due = fired_events(batch, message_type)
    if due:
        stored = set(
            session.scalars(
                select(Notification.event).where(
                    Notification.user_id == batch.user_id, Notification.batch_id == batch.id
                )
            )
        )
        highest = max((m for e in stored if (m := _milestone(e)) is not None), default=0)
        # A milestone below one already announced stays unannounced: progress only moves forward.
        due = [e for e in due if e not in stored and (_milestone(e) or 101) > highest]
    if not due:
        return 0
    batch.milestone = max([batch.milestone or 0, *(m for e in due if (m := _milestone(e)) is not None)])
    prefs = load_preferences(session, batch.user_id)
    created = 0
    for event in due:
        keys = {"user_id": batch.user_id, "batch_id": batch.id, "event": event}
        title, body = describe(batch, event)
        in_app, push = prefs.wants("in_app", event), prefs.wants("push", event)
        payload = {
            "event": event,
            "batch_id": batch.id,
            "filename": batch.filename,
            "status": batch.status,
            "total": batch.total,
            "succeeded": batch.succeeded,
            "failed": batch.failed,
            "cancelled": batch.cancelled,
            "title": title,
            "body": body,
            "path": f"/batches/{batch.id}",
            "push": push,
            "in_app": in_app,
            "user_id": batch.user_id,
        }
        try:
            with session.begin_nested():  # a concurrent worker may have stored it first: keep our transaction
                note = Notification(**keys, title=title, body=body, in_app=in_app, push=push)
                session.add(note)
                session.flush()
                payload["notification_id"] = note.id
                channels = [c for c in EXTERNAL_CHANNELS if prefs.wants(c, event)]
                if in_app or push:
                    channels.append("in_app")
                if "email" in channels:
                    payload["email"] = session.scalar(select(User.email).where(User.id == batch.user_id))
                if "webhook" in channels:
                    payload["webhook_url"] = prefs.webhook_url
                    payload["webhook_secret"] = prefs.webhook_secret
                for channel in channels:
                    session.add(OutboxEntry(**keys, channel=channel, payload=dict(payload)))
        except IntegrityError:
            log.info("notification %s for batch %s was already stored", event, batch.id)
            continue
        created += 1
    return created
