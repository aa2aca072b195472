"""What the progress sockets of one batch are sent and when: an opening, coalesced progress, heartbeats.

Every message says which events it covers: ``from_seq``..``seq``. ``opening_messages`` is what one
socket gets first (a snapshot, or the replay after its ``last_seq``); ``ProgressStream`` decides what
every socket of the batch gets after that, once per batch, without doing I/O or reading a clock
(``now`` is passed in, monotonic seconds), so the coalescing, coverage and heartbeat rules are
unit-tested without waiting. ``fanout.py`` does the waiting and the sending. The protocol is
docs/contract.md, "Progress WebSocket".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Event

#: Message types that carry a stored event, and so a new ``seq``.
ADVANCING_TYPES = frozenset({"progress", "status", "completed", "error"})
#: The batch state every message repeats (the status body's fields of the same names).
STATE_FIELDS = (
    "batch_id",
    "status",
    "total",
    "processed",
    "succeeded",
    "failed",
    "cancelled",
    "percent",
    "eta_seconds",
)


def utc_iso(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds and a ``Z``, the form the status body uses."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _message(kind: str, view: Mapping[str, Any], event_time: str | None, from_seq: int) -> dict[str, Any]:
    message: dict[str, Any] = {"type": kind, "seq": view["seq"], "from_seq": from_seq}
    for name in STATE_FIELDS:
        message[name] = view[name]
    message["event_time"] = event_time
    return message


def event_message(event: Mapping[str, Any], from_seq: int | None = None) -> dict[str, Any]:
    """The socket message for a stored or published event (``record_event``'s payload).

    It covers ``from_seq``..its seq: the event alone unless it stands in for older coalesced ones.
    """
    seq = event["seq"]
    return _message(event["type"], event, event.get("event_time") or event.get("updated_at"), from_seq or seq)


def snapshot_message(view: Mapping[str, Any]) -> dict[str, Any]:
    """The current state (a status body); its event time is that of the batch's latest event.

    A snapshot is the sum of the whole history, so it covers 1..seq and restarts a client's coverage.
    """
    return _message("snapshot", view, view.get("updated_at"), 1)


def heartbeat_message(state: Mapping[str, Any], seq: int) -> dict[str, Any]:
    """The last state again at ``seq``, covering nothing new: ``from_seq`` = ``seq``, already covered."""
    return {**state, "type": "heartbeat", "seq": seq, "from_seq": seq}


def opening_messages(
    view: Mapping[str, Any], *, last_seq: int | None, stored: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """What one socket gets first: a snapshot, or every stored event after ``last_seq``, none held back.

    A ``last_seq`` beyond the batch's own seq cannot come from this server's history, so the client
    gets a snapshot to start over from. A replay may be empty (nothing new since ``last_seq``).
    """
    if last_seq is None or last_seq > view["seq"]:
        return [snapshot_message(view)]
    events = sorted((e for e in stored if e["seq"] > last_seq), key=lambda e: e["seq"])
    return [event_message(e) for e in events]


def covered_seq(opening: Iterable[Mapping[str, Any]], last_seq: int | None) -> int:
    """The seq a socket has been shown up to once ``opening`` went out (for a resume: ``last_seq`` at least)."""
    return max((m["seq"] for m in opening), default=last_seq or 0)


def encode(message: Mapping[str, Any], now: datetime | None = None) -> str:
    """The JSON text to send, stamped with ``server_time`` (and a heartbeat's ``event_time``)."""
    stamp = utc_iso(now or datetime.now(UTC))
    body = dict(message)
    body["server_time"] = stamp
    if body["type"] == "heartbeat":
        body["event_time"] = stamp
    return json.dumps(body, separators=(",", ":"))


def stored_events_after(session: Session, batch_id: str, after_seq: int) -> list[dict[str, Any]]:
    """Every stored event of the batch with ``seq > after_seq``, oldest first (the replay)."""
    query = select(Event.payload).where(Event.batch_id == batch_id, Event.seq > after_seq).order_by(Event.seq)
    return list(session.scalars(query))


class ProgressStream:
    """The send decisions for every socket on one batch, made once per batch.

    - ``start`` takes the batch's state (its status view); from then on ``offer`` takes each live
      event. An event that would leave a hole behind what was taken in (``needs_backfill``) tells
      the caller to read the missing ones from storage and offer those first.
    - ``progress`` is coalesced: one is sent at once if no data went out in the last ``coalesce_s``,
      otherwise it is held and replaced by newer ones until the window ends (a throttle with a
      trailing edge). Any other event type goes out at once and supersedes a held progress. A
      message that replaces held ones covers them too: its ``from_seq`` is the oldest it stands for,
      so the ranges sent join without a hole. A hole the caller could not fill is never papered
      over: the message after it starts at its own seq, and clients see the missing range.
    - A ``heartbeat`` repeating the last state goes out whenever nothing was sent for ``heartbeat_s``.
    """

    def __init__(self, *, coalesce_s: float, heartbeat_s: float) -> None:
        if heartbeat_s <= 0:
            raise ValueError("heartbeat_s must be positive")
        self.coalesce_s = max(0.0, coalesce_s)
        self.heartbeat_s = heartbeat_s
        self.seq = 0  # the newest seq sent: every one up to it is covered by what went out
        self.received = 0  # the newest seq taken in, sent or held
        self._state: dict[str, Any] | None = None
        self._pending: dict[str, Any] | None = None
        self._pending_from = 0
        self._last_data_at = -math.inf
        self._last_sent_at = -math.inf

    @property
    def started(self) -> bool:
        return self._state is not None

    def start(self, view: Mapping[str, Any], now: float) -> None:
        """Begin at the batch's current state; events up to its seq are history (the openings cover them)."""
        self.seq = self.received = view["seq"]
        self._state = snapshot_message(view)
        self._last_sent_at = now

    def needs_backfill(self, event: Mapping[str, Any]) -> bool:
        """True when taking ``event`` would skip seqs never taken in: read storage first."""
        return self.started and event["seq"] > self.received + 1

    def offer(self, event: Mapping[str, Any], now: float) -> list[dict[str, Any]]:
        """A live event: what to send now (maybe nothing; it may be held, or already taken in)."""
        seq = event["seq"]
        if not self.started or seq <= self.received:
            return []  # history, or a repeat (the bus and a backfill may both bring it)
        out: list[dict[str, Any]] = []
        if seq > self.received + 1 and self._pending is not None:
            out.extend(self._flush(now))  # a range may not span the hole: what was held goes out alone
        from_seq = self._pending_from if self._pending is not None else self.seq + 1
        if seq > self.received + 1:
            from_seq = seq
        self.received = seq
        if event["type"] == "progress" and now - self._last_data_at < self.coalesce_s:
            self._pending, self._pending_from = dict(event), from_seq
            return out
        self._pending = None
        out.append(self._emit(event_message(event, from_seq), now))
        return out

    def due(self, now: float) -> list[dict[str, Any]]:
        """What the clock alone makes due: a held progress at the end of its window, or a heartbeat."""
        if self._pending is not None and now >= self._last_data_at + self.coalesce_s:
            return self._flush(now)
        if self._state is not None and now >= self._last_sent_at + self.heartbeat_s:
            self._last_sent_at = now
            return [heartbeat_message(self._state, self.seq)]
        return []

    def next_deadline(self) -> float:
        """The monotonic time at which ``due`` next has something (wait for events until then)."""
        deadline = self._last_sent_at + self.heartbeat_s
        if self._pending is not None:
            deadline = min(deadline, self._last_data_at + self.coalesce_s)
        return deadline

    def _flush(self, now: float) -> list[dict[str, Any]]:
        pending, self._pending = self._pending, None
        return [] if pending is None else [self._emit(event_message(pending, self._pending_from), now)]

    def _emit(self, message: dict[str, Any], now: float) -> dict[str, Any]:
        self.seq = message["seq"]
        self._state = message
        self._last_data_at = self._last_sent_at = now
        return message
