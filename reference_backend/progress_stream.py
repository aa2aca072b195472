"""What one progress socket sends and when: a snapshot or a replay, coalesced progress, heartbeats.

``ProgressStream`` decides without doing I/O or reading a clock (``now`` is passed in, monotonic
seconds), so the coalescing and heartbeat rules are unit-tested without waiting; the socket route
(``routes/sockets.py``) does the waiting and the sending. The protocol is docs/contract.md,
"Progress WebSocket".
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import faults
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


def _message(kind: str, view: Mapping[str, Any], event_time: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": kind, "seq": view["seq"]}
    for name in STATE_FIELDS:
        message[name] = view[name]
    message["event_time"] = event_time
    return message


def event_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """The socket message for a stored or published event (``record_event``'s payload)."""
    return _message(event["type"], event, event.get("event_time") or event.get("updated_at"))


def snapshot_message(view: Mapping[str, Any]) -> dict[str, Any]:
    """The current state (a status body); its event time is that of the batch's latest event."""
    return _message("snapshot", view, view.get("updated_at"))


def encode(message: Mapping[str, Any], now: datetime | None = None) -> str:
    """The JSON text to send, stamped with ``server_time`` (and a heartbeat's ``event_time``)."""
    stamp = utc_iso(now or datetime.now(UTC))
    body = dict(message)
    body["server_time"] = stamp
    if body["type"] == "heartbeat":
        body["event_time"] = stamp
    return json.dumps(body, separators=(",", ":"))


class MessageEncoder:
    """``encode`` for many sockets: an event's message is the same on every socket but for
    ``server_time``, so its JSON is made once and kept for the ``capacity`` most recent events
    (with a thousand sockets on one batch, one ``json.dumps`` per event instead of a thousand).
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._bodies: OrderedDict[tuple[str, int, str], str] = OrderedDict()

    def encode(self, message: Mapping[str, Any], now: datetime | None = None) -> str:
        kind = message["type"]
        if kind not in ADVANCING_TYPES:
            return encode(message, now)
        key = (message["batch_id"], message["seq"], kind)
        body = self._bodies.get(key)
        if body is None:
            body = json.dumps({**message, "server_time": ""}, separators=(",", ":"))[: -len('"server_time":""}')]
            self._bodies[key] = body
            if len(self._bodies) > self.capacity:
                self._bodies.popitem(last=False)
        return f'{body}"server_time":"{utc_iso(now or datetime.now(UTC))}"}}'


def stored_events_after(session: Session, batch_id: str, after_seq: int) -> list[dict[str, Any]]:
    """Every stored event of the batch with ``seq > after_seq``, oldest first (the replay)."""
    query = select(Event.payload).where(Event.batch_id == batch_id, Event.seq > after_seq).order_by(Event.seq)
    return list(session.scalars(query))


class ProgressStream:
    """The send decisions of one socket.

    - The first messages are a ``snapshot`` or, on a resumed connection, every stored event after
      ``last_seq`` (so its first advancing message is ``last_seq + 1``).
    - ``progress`` is coalesced: one is sent at once if no data went out in the last ``coalesce_s``,
      otherwise it is held and replaced by newer ones until the window ends (a throttle with a
      trailing edge). Any other event type goes out at once and supersedes a held progress, whose
      counts it already contains. So on the live path seqs may be skipped; they never go backwards.
    - A ``heartbeat`` repeating the last state goes out whenever nothing was sent for ``heartbeat_s``.
    """

    def __init__(self, *, coalesce_s: float, heartbeat_s: float) -> None:
        if heartbeat_s <= 0:
            raise ValueError("heartbeat_s must be positive")
        self.coalesce_s = max(0.0, coalesce_s)
        self.heartbeat_s = heartbeat_s
        self.seq = 0
        self._state: dict[str, Any] | None = None
        self._pending: dict[str, Any] | None = None
        self._last_data_at = -math.inf
        self._last_sent_at = -math.inf
        self._resuming = False

    def open(
        self, view: Mapping[str, Any], *, last_seq: int | None, stored: Iterable[Mapping[str, Any]], now: float
    ) -> list[dict[str, Any]]:
        """The opening messages for the current ``view`` and the events stored after ``last_seq``.

        A ``last_seq`` beyond the batch's own seq cannot come from this server's history, so the
        client gets a snapshot to start over from.
        """
        if last_seq is None or last_seq > view["seq"]:
            return [self._emit(snapshot_message(view), now)]
        self.seq = last_seq
        self._state = snapshot_message(view)
        self._state["seq"] = last_seq
        self._last_sent_at = now  # the handshake just happened: the heartbeat clock starts here
        self._resuming = True
        return self.replay(stored, now)

    def replay(self, stored: Iterable[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
        """Every event newer than what was sent, in seq order, none held back."""
        out = [self._emit(event_message(e), now) for e in sorted(stored, key=lambda e: e["seq"]) if e["seq"] > self.seq]
        if self._pending is not None and self._pending["seq"] <= self.seq:
            self._pending = None
        return out

    def needs_backfill(self, event: Mapping[str, Any]) -> bool:
        """True when a resumed connection would skip seqs by sending ``event``: read storage first."""
        return self._resuming and event["seq"] > self.seq + 1

    def offer(self, event: Mapping[str, Any], now: float) -> list[dict[str, Any]]:
        """A live event from the bus: what to send now (maybe nothing; it may be held or stale)."""
        seq = event["seq"]
        if seq <= self.seq or (self._pending is not None and seq <= self._pending["seq"]):
            return []  # already sent, or older than the held one (the bus gives no order across threads)
        if event["type"] == "progress" and now - self._last_data_at < self.coalesce_s:
            self._pending = dict(event)
            return []
        self._pending = None
        return [self._emit(event_message(event), now)]

    def due(self, now: float) -> list[dict[str, Any]]:
        """What the clock alone makes due: a held progress at the end of its window, or a heartbeat."""
        if self._pending is not None and now >= self._last_data_at + self.coalesce_s:
            pending, self._pending = self._pending, None
            return [self._emit(event_message(pending), now)]
        if self._state is not None and now >= self._last_sent_at + self.heartbeat_s:
            if self._state.get("status") == "paused" and faults.on("no_heartbeat_when_paused"):
                self._last_sent_at = now
                return []
            self._last_sent_at = now
            return [{**self._state, "type": "heartbeat", "seq": self.seq}]
        return []

    def next_deadline(self) -> float:
        """The monotonic time at which ``due`` next has something (wait for events until then)."""
        deadline = self._last_sent_at + self.heartbeat_s
        if self._pending is not None:
            deadline = min(deadline, self._last_data_at + self.coalesce_s)
        return deadline

    def _emit(self, message: dict[str, Any], now: float) -> dict[str, Any]:
        self.seq = max(self.seq, message["seq"])
        self._state = message
        self._last_data_at = self._last_sent_at = now
        self._resuming = False
        return message
