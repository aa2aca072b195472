"""The batch state machine: legal moves pass, illegal ones raise a 409 naming both ends."""

from __future__ import annotations

import pytest

from reference_backend.errors import Conflict
from reference_backend.lifecycle import TRANSITIONS, BatchStatus, check_transition, final_status

pytestmark = pytest.mark.area("Queue and states")


@pytest.mark.parametrize(
    ("current", "target"),
    [(c, t) for c in BatchStatus for t in BatchStatus if t not in TRANSITIONS[c]],
    ids=lambda s: s.value,
)
def test_illegal_transition_raises_conflict(current: BatchStatus, target: BatchStatus) -> None:
    with pytest.raises(Conflict) as raised:
        check_transition(current, target, action="move")
    assert raised.value.code == "illegal_transition"
    assert raised.value.details == {"from": current.value, "action": "move"}


def test_terminal_states_only_leave_through_retry() -> None:
    for status in (BatchStatus.COMPLETED, BatchStatus.CANCELLED):
        assert TRANSITIONS[status] == frozenset()
    for status in (BatchStatus.FAILED, BatchStatus.COMPLETED_WITH_ERRORS):
        assert TRANSITIONS[status] == frozenset({BatchStatus.QUEUED})


@pytest.mark.parametrize(
    ("succeeded", "failed", "expected"),
    [(10, 0, BatchStatus.COMPLETED), (7, 3, BatchStatus.COMPLETED_WITH_ERRORS), (0, 10, BatchStatus.FAILED)],
)
def test_final_status_follows_the_counts(succeeded: int, failed: int, expected: BatchStatus) -> None:
    assert final_status(total=10, succeeded=succeeded, failed=failed) is expected
