"""The work queue's SQL, built once: building a statement (an aliased entity, its adapted columns) costs more
CPU than running it, and the queue runs these for every chunk. ``now``, the batch and the rows a process holds are
parameters.

The locks a batch's row takes on PostgreSQL (SQLite has one writer and ignores them): the batch's own writes (its
turn and start from a claim; its counters, seq and events from a store) take ``FOR NO KEY UPDATE``, which a store
waits for and a claim skips (``SKIP LOCKED``): a claim that finds the row held writes nothing to it, holds ``FOR KEY
SHARE`` instead and still takes the batch's rows. Neither lock conflicts with ``FOR KEY SHARE``; both conflict with
``FOR UPDATE``, which user actions (pause, cancel, retry) and the settling of cancelled batches take. So a claim
never waits for another claim or a store of its batch (a store may wait for a claim, off the provider's schedule),
and an action never lands halfway through a claim.
"""

from __future__ import annotations

from sqlalchemy import BindParameter, ColumnElement, Float, and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from .lifecycle import BatchStatus, RowStatus
from .models import Batch, Row

RUNNABLE = (BatchStatus.QUEUED.value, BatchStatus.RUNNING.value)


def claimable(now: float | BindParameter[float], holding: ColumnElement[bool] | None = None) -> ColumnElement[bool]:
    lapsed = and_(Row.status == RowStatus.RUNNING.value, Row.lease_until < now)
    if holding is not None:
        lapsed = and_(lapsed, holding)
    return or_(Row.status == RowStatus.PENDING.value, lapsed)


# A lease of a row this process still holds may lapse while the machine is starved; the process's own claims
# never take such a row back (``holding``: the row ids it holds), only other workers do.
CLAIMABLE_NOW = claimable(bindparam("now", type_=Float), Row.id.not_in(bindparam("holding", expanding=True)))
_SERVED = aliased(Batch)
_USER_LAST_SERVED = select(func.max(_SERVED.last_claimed_at)).where(_SERVED.user_id == Batch.user_id).scalar_subquery()
# ``passed``: batches this claim already served without moving their turn (``CANDIDATES_SHARED``).
_CANDIDATES = (
    select(Batch)
    .where(
        Batch.status.in_(RUNNABLE),
        Batch.id.not_in(bindparam("passed", expanding=True)),
        exists().where(Row.batch_id == Batch.id, CLAIMABLE_NOW),
    )
    .order_by(_USER_LAST_SERVED, Batch.last_claimed_at, Batch.created_at)
    .limit(1)
)
# Two candidates, to tell "the fairest of several" from "alone in the queue". First those whose row the claim can
# write (its turn, its start) because nobody else writes it now; then, when there are none, those someone else
# writes now, whose rows are still claimed (without writing the batch); then, when every candidate is held by a
# user's action, the fairest one, waited for.
CANDIDATES_TO_WRITE = (
    _CANDIDATES.limit(2)
    .with_for_update(key_share=True, skip_locked=True, of=Batch)
    .execution_options(populate_existing=True)
)
CANDIDATES_SHARED = _CANDIDATES.limit(2).with_for_update(read=True, key_share=True, skip_locked=True, of=Batch)
CANDIDATE_WAITING = _CANDIDATES.with_for_update(read=True, key_share=True, of=Batch)
# Whether any row is left to claim, asked only when a claim seems to have taken the last ones.
ANY_CLAIMABLE = select(exists().where(Row.batch_id == Batch.id, Batch.status.in_(RUNNABLE), CLAIMABLE_NOW))
HELD_ROWS = (
    select(Row.id, Row.attempts)
    .where(
        Row.id.in_(bindparam("ids", expanding=True)),
        Row.status == RowStatus.RUNNING.value,
        Row.lease_owner == bindparam("worker"),
    )
    .with_for_update()
)
# A batch's row to write its counters, seq and events (a store), waiting for whoever writes it now.
BATCH_TO_WRITE = select(Batch).where(Batch.id == bindparam("batch_id")).with_for_update(key_share=True)

# The batch's next claimable rows, in order; ``limit`` is the rows of as many chunks as are claimed at once, and
# ``taken`` the rows this claim already chose (written when it ends).
NEXT_ROWS = (
    select(Row.id, Row.row_number, Row.status, Row.attempts, Row.lost_attempts, Row.prompt, Row.category)
    .where(Row.batch_id == bindparam("batch_id"), CLAIMABLE_NOW, Row.id.not_in(bindparam("taken", expanding=True)))
    .order_by(Row.row_number)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)

# The claimed rows, taken in one statement: the values a claim sets are the same for every row or follow from the
# row's own (right-hand sides see the row as it was), so no per-row statements. A row whose lease lapsed was lost
# once more.
TAKE_ROWS = (
    update(Row)
    .where(Row.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=RowStatus.RUNNING.value,
        attempts=Row.attempts + 1,
        lost_attempts=Row.lost_attempts + case((Row.status == RowStatus.RUNNING.value, 1), else_=0),
        lease_owner=bindparam("worker"),
        lease_until=bindparam("lease_until", type_=Float),
    )
    .execution_options(synchronize_session=False)
)
