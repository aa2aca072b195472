"""Tables: users, revoked tokens, batches, rows (one per input row), events, the provider-call ledger, stored files."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    filename: Mapped[str | None] = mapped_column(String(200))
    source_format: Mapped[str] = mapped_column(String(16))
    columns: Mapped[list[str]] = mapped_column(JSON)
    prompt_column: Mapped[str] = mapped_column(String(200))
    category_column: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32), index=True)
    total: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # ETA bookkeeping: the rate is measured over the current running period only.
    run_started_at: Mapped[datetime | None] = mapped_column()
    run_base_processed: Mapped[int] = mapped_column(Integer, default=0)
    # Fair scheduling: the dispatcher serves the runnable batch it served least recently.
    last_claimed_at: Mapped[float] = mapped_column(Float, default=0.0)
    # The highest progress milestone (percent) announced, so a progress event that crosses none costs no query.
    milestone: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed


class Row(Base):
    __tablename__ = "rows"
    __table_args__ = (
        UniqueConstraint("batch_id", "row_number", name="uq_rows_batch_row"),
        Index("ix_rows_batch_status", "batch_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"))
    row_number: Mapped[int] = mapped_column(Integer)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    prompt: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    enhanced_prompt: Mapped[str | None] = mapped_column(Text)
    techniques: Mapped[list[str] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[float | None] = mapped_column(Float)
    # Claims that ended with the worker gone (lease lapsed, no result): the poison-row count. Provider
    # failures and user retries do not add to it, so "retry until it works" never turns a row into poison.
    lost_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("batch_id", "seq", name="uq_events_batch_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallOutcome(StrEnum):
    """What became of one provider call in the ledger; ``None`` in the table while it is in flight."""

    SUCCEEDED = "succeeded"  # result stored: the row succeeded
    FAILED = "failed"  # result stored: the row failed
    DISCARDED = "discarded"  # result came back after the lease was lost, so it was not stored
    LOST = "lost"  # the worker vanished; another claim took the row over
    RELEASED = "released"  # the worker shut down and handed the row back unrun


class ProviderCall(Base):
    """The ledger: one entry per row handed to the provider, closed with what became of its result.

    Written in the same transactions as the claim and the result, so an entry marked ``succeeded`` or
    ``failed`` exists exactly when that attempt's result was stored (tests read it to prove exactly-once).
    """

    __tablename__ = "provider_calls"
    __table_args__ = (UniqueConstraint("batch_id", "row_number", "attempt", name="uq_calls_batch_row_attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"))
    row_number: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(16))


class StoredFile(Base):
    """An uploaded original kept in file storage; the sum of ``bytes`` per user is checked against the quota."""

    __tablename__ = "stored_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), unique=True)
    key: Mapped[str] = mapped_column(String(500), unique=True)
    bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RevokedToken(Base):
    """A bearer token ended by logout before it expired; kept until ``expires_at``, when it dies anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
