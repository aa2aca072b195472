"""Batch and row states, with the transition table that refuses an illegal move."""

from __future__ import annotations

from enum import StrEnum

from .errors import Conflict


class BatchStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_runnable(self) -> bool:
        return self in (BatchStatus.QUEUED, BatchStatus.RUNNING)


class RowStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset(
    {BatchStatus.CANCELLED, BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_ERRORS, BatchStatus.FAILED}
)

_FINISHED = {BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_ERRORS, BatchStatus.FAILED}

TRANSITIONS: dict[BatchStatus, frozenset[BatchStatus]] = {
    BatchStatus.QUEUED: frozenset({BatchStatus.RUNNING, BatchStatus.PAUSED, BatchStatus.CANCELLED, *_FINISHED}),
    BatchStatus.RUNNING: frozenset({BatchStatus.PAUSED, BatchStatus.CANCELLED, *_FINISHED}),
    # A paused batch whose in-flight rows were its last ones finishes rather than waiting for resume.
    BatchStatus.PAUSED: frozenset({BatchStatus.RUNNING, BatchStatus.QUEUED, BatchStatus.CANCELLED, *_FINISHED}),
    BatchStatus.COMPLETED_WITH_ERRORS: frozenset({BatchStatus.QUEUED}),
    BatchStatus.FAILED: frozenset({BatchStatus.QUEUED}),
    BatchStatus.COMPLETED: frozenset(),
    BatchStatus.CANCELLED: frozenset(),
}

# What each user action asks for; the check is the transition table, so the two never disagree.
ACTION_TARGET: dict[str, BatchStatus] = {
    "pause": BatchStatus.PAUSED,
    "resume": BatchStatus.RUNNING,
    "cancel": BatchStatus.CANCELLED,
    "retry": BatchStatus.QUEUED,
}


def check_transition(current: BatchStatus, target: BatchStatus, *, action: str | None = None) -> None:
    """Raise ``Conflict`` (409 ``illegal_transition``) unless ``current -> target`` is allowed."""
    if target not in TRANSITIONS[current]:
        verb = action or target.value
        raise Conflict(
            f"Cannot {verb} a batch that is {current.value}.",
            code="illegal_transition",
            **{"from": current.value, "action": verb},
        )


def final_status(*, total: int, succeeded: int, failed: int) -> BatchStatus:
    """The status a batch ends in once every row is done."""
    if failed == 0:
        return BatchStatus.COMPLETED
    if succeeded == 0 and failed == total:
        return BatchStatus.FAILED
    return BatchStatus.COMPLETED_WITH_ERRORS
