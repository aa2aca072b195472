"""The outbox dispatcher: delivers due entries, retries failures with backoff, never blocks a batch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..bus import EventPublisher
from ..config import Settings
from ..database import Store
from ..models import utcnow
from .models import OutboxEntry
from .senders import DeliveryError, FileMailSender, Sender, SmtpSender, SocketSender, WebhookSender

log = logging.getLogger(__name__)

CLAIM_LIMIT = 20
LEASE_SECONDS = 60.0


@dataclass(frozen=True)
class Due:
    id: int
    channel: str
    payload: dict[str, Any]
    attempts: int


def build_senders(settings: Settings, publisher: EventPublisher) -> dict[str, Sender]:
    mail: Sender = (
        SmtpSender(settings)
        if settings.smtp_host
        else FileMailSender(settings.data_dir / "mail-outbox", settings.smtp_from, settings.base_url)
    )
    return {
        "email": mail,
        "webhook": WebhookSender(settings.webhook_timeout_seconds, settings.base_url),
        "in_app": SocketSender(publisher),
    }


def backoff_seconds(attempts: int, *, base: float, cap: float) -> float:
    return min(cap, base * 2 ** max(0, attempts - 1))


class OutboxDispatcher:
    """Polls the outbox; each entry is claimed under a lease, so several processes can share it."""

    def __init__(self, store: Store, settings: Settings, senders: dict[str, Sender]) -> None:
        self.store = store
        self.settings = settings
        self.senders = senders
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batchqa-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                delivered = await asyncio.to_thread(self.deliver_due)
            except Exception:
                log.exception("outbox round failed; trying again")
                delivered = 0
            if not delivered:
                await asyncio.sleep(self.settings.notify_poll_seconds)

    def claim_due(self) -> list[Due]:
        now = time.time()
        with self.store.write() as session:
            entries = session.scalars(
                select(OutboxEntry)
                .where(
                    OutboxEntry.status == "pending",
                    OutboxEntry.next_attempt_at <= now,
                    OutboxEntry.lease_until <= now,
                )
                .order_by(OutboxEntry.id)
                .limit(CLAIM_LIMIT)
                .with_for_update(skip_locked=True)
            ).all()
            for entry in entries:
                entry.lease_until = now + LEASE_SECONDS
            return [Due(e.id, e.channel, dict(e.payload), e.attempts) for e in entries]

    def deliver_due(self) -> int:
        """One round: deliver what is due; returns how many entries were attempted."""
        due = self.claim_due()
        for entry in due:
            error: str | None = None
            try:
                self.senders[entry.channel].send(entry.id, entry.payload)
            except DeliveryError as exc:
                error = str(exc)
            except Exception as exc:  # a bug in a sender must not stop the other deliveries
                log.exception("sender %s crashed on outbox entry %s", entry.channel, entry.id)
                error = f"{type(exc).__name__}: {exc}"
            self._settle(entry, error)
        return len(due)

    def _settle(self, due: Due, error: str | None) -> None:
        with self.store.write() as session:
            entry = session.get(OutboxEntry, due.id)
            if entry is None:
                return
            entry.attempts += 1
            entry.lease_until = 0.0
            if error is None:
                entry.status = "sent"
                entry.sent_at = utcnow()
                entry.last_error = None
                return
            entry.last_error = error
            if entry.attempts >= self.settings.notify_max_attempts:
                entry.status = "failed"
                log.error(
                    "outbox entry %s (%s) gave up after %d attempts: %s", entry.id, entry.channel, entry.attempts, error
                )
                return
            delay = backoff_seconds(
                entry.attempts, base=self.settings.notify_retry_base_seconds, cap=self.settings.notify_retry_max_seconds
            )
            entry.next_attempt_at = time.time() + delay
            log.warning("outbox entry %s (%s) failed, retry in %.1f s: %s", entry.id, entry.channel, delay, error)
