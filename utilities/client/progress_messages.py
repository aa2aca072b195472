"""The progress socket's messages as a client reads them: paths, message types and refusal codes, one received
message with the seqs it covers, one connection, the socket URL, per-message checks, and seq ranges in words.

Seq rules (docs/contract.md, "Progress WebSocket"): every message covers ``from_seq``..``seq``; advancing
seqs strictly increase and never repeat, and the ranges a client receives join without a hole, across
reconnections with ``last_seq`` too. A snapshot covers 1..seq; a heartbeat covers nothing new.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from utilities.client.schemas import schema_problems

WS_PATH = "/api/v1/batch/ws/{batch_id}"
STATUS_PATH = "/api/v1/batch/status/{batch_id}"
SESSION_COOKIE = "batchqa_session"
ADVANCING_TYPES = frozenset({"progress", "status", "completed", "error"})
MESSAGE_TYPES = ADVANCING_TYPES | {"snapshot", "heartbeat"}
FINISHED_STATUSES = frozenset({"completed", "completed_with_errors", "failed"})
REFUSALS = {
    4401: "not authenticated",
    4403: "origin not allowed",
    4404: "batch missing or another user's",
    1008: "policy violation",
    1009: "message too big",
}
STATE_FIELDS = ("status", "total", "processed", "succeeded", "failed", "cancelled", "percent")


@dataclass(frozen=True)
class Received:
    """One message as it arrived: ``at`` is ``time.monotonic()``, ``wall`` is ``time.time()``."""

    message: dict[str, Any]
    at: float
    wall: float
    connection: int
    problems: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return str(self.message.get("type", "poll"))

    @property
    def seq(self) -> int | None:
        seq = self.message.get("seq")
        return seq if isinstance(seq, int) else None

    @property
    def from_seq(self) -> int | None:
        """The oldest event the message covers; its seq when the target does not say."""
        from_seq = self.message.get("from_seq")
        return from_seq if isinstance(from_seq, int) else self.seq

    @property
    def status(self) -> str | None:
        return self.message.get("status")


@dataclass
class Connection:
    """One socket connection (or, for polling, the whole run); ``last_seq`` is what it resumed from."""

    index: int
    opened_at: float
    opened_wall: float
    last_seq: int | None = None
    closed_at: float | None = None
    close_code: int | None = None
    close_reason: str = ""


def ws_url(base_url: str, batch_id: str, *, last_seq: int | None = None, token: str | None = None) -> str:
    """The progress socket's URL for a target's HTTP base URL."""
    base = base_url.rstrip("/")
    base = "wss://" + base[len("https://") :] if base.startswith("https://") else base.replace("http://", "ws://", 1)
    query = {k: v for k, v in (("last_seq", last_seq), ("token", token)) if v is not None}
    return base + WS_PATH.format(batch_id=batch_id) + (f"?{urlencode(query)}" if query else "")


def message_problems(message: Mapping[str, Any]) -> list[str]:
    """Schema problems of one socket message (its type's schema), plus the rules a schema cannot say."""
    kind = message.get("type")
    problems = schema_problems(f"ws_{kind}" if kind in MESSAGE_TYPES else "ws_message", message)
    if kind == "heartbeat" and message.get("event_time") != message.get("server_time"):
        problems.append("heartbeat: event_time differs from server_time")
    seq, from_seq = message.get("seq"), message.get("from_seq")
    if isinstance(seq, int) and isinstance(from_seq, int):
        if from_seq > seq:
            problems.append(f"from_seq {from_seq} is after seq {seq}")
        elif kind == "heartbeat" and from_seq != seq:
            problems.append(f"heartbeat covers {from_seq}..{seq}: it must cover nothing new (from_seq = seq)")
    return problems


def seq_ranges(seqs: Iterable[int]) -> str:
    """``[3, 4, 5, 9]`` as ``3..5, 9``: how a person reads a missing range."""
    parts: list[str] = []
    for _, run in itertools.groupby(enumerate(sorted(set(seqs))), key=lambda pair: pair[1] - pair[0]):
        values = [value for _, value in run]
        parts.append(str(values[0]) if len(values) == 1 else f"{values[0]}..{values[-1]}")
    return ", ".join(parts)


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an ISO 8601 timestamp; None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
