"""Hold a batch's progress WebSocket (docs/contract.md) and report lag and gaps as Locust entries."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from locust.clients import HttpSession
from locust.env import Environment

from perf.users.common import option, poll_until_terminal, record
from utilities.client.api import TERMINAL_STATUSES
from utilities.client.progress_messages import ADVANCING_TYPES, seq_ranges
from utilities.client.socket_follower import (
    REFUSED_CLOSES,
    Arrived,
    Connected,
    Ending,
    SocketEvent,
    SocketFollower,
    Why,
)
from utilities.perf.names import WS, WS_CONNECT, WS_FIRST, WS_GAP, WS_HELD, WS_LAG, WS_MISSING, WS_ORDER, WS_SILENCE

log = logging.getLogger(__name__)

REFUSAL_CODES = REFUSED_CLOSES


class SocketRefused(Exception):
    """The server would not open the socket: no such route yet, or a 4401/4403/4404 close."""


class SocketBroken(Exception):
    """The socket opened but then failed: silence, a closed connection, or seq out of order."""


class SeqHole(Exception):
    """Seqs that no message covered: the ranges ``from_seq``..``seq`` did not join."""


@dataclass
class Watch:
    """What one socket saw; ``last`` is the newest message (its ``status`` says how the batch ended)."""

    messages: int = 0
    events: int = 0
    missing: int = 0  # seqs no message covered
    max_gap_s: float = 0.0
    last: dict[str, Any] | None = None
    terminal_at: float | None = None  # time.perf_counter() when the terminal status arrived


def _event_epoch(message: dict[str, Any]) -> float | None:
    try:
        return datetime.fromisoformat(message["event_time"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def watch(
    environment: Environment,
    host: str,
    token: str,
    batch_id: str,
    *,
    hold_s: float,
    max_silence_s: float,
    timeout_s: float,
) -> Watch:
    """Follow ``batch_id`` until it is terminal, keep listening ``hold_s`` longer, then close.

    Every message adds a ``gap`` sample (time since the previous one); every event message (not the
    snapshot, not a heartbeat) adds a ``lag`` sample: arrival time minus its ``event_time``, both on
    the wall clock, so against a remote target the clocks must agree (NTP) for lag to mean anything.
    The contract's seq rules are ``SeqCoverage``'s: each hole in the covered seqs is one failed ``missing``
    entry naming the range, each repeated or backward seq one failed ``order`` entry. One connection: a
    drop, a silence or a refusal raises (``SocketBroken``, ``SocketRefused``) rather than reconnecting.
    """
    follower = SocketFollower(
        host,
        batch_id,
        token=token,
        open_timeout_s=30,
        recv_timeout_s=max_silence_s,
        deadline_s=timeout_s,
        reconnect=None,
        ping_interval=None,  # silence is what is measured; the server's heartbeats keep it alive
        max_size=64 * 1024,
        validate=False,  # the load run measures; the suites check the messages
        clock=time.perf_counter,
    )
    listener = _Listener(environment, follower, hold_s)
    try:
        ending = follower.follow(listener)
    finally:
        if listener.opened is not None:
            record(environment, WS, WS_HELD, (time.perf_counter() - listener.opened) * 1000)
    _raise_for(environment, ending, listener, max_silence_s=max_silence_s, timeout_s=timeout_s)
    return listener.seen


class _Listener:
    """Turns a follower's events into Locust entries and a ``Watch``; stops it ``hold_s`` after the terminal status."""

    def __init__(self, environment: Environment, follower: SocketFollower, hold_s: float) -> None:
        self.environment, self.follower, self.hold_s = environment, follower, hold_s
        self.seen = Watch()
        self.started = time.perf_counter()
        self.opened: float | None = None
        self.previous: float | None = None

    def __call__(self, event: SocketEvent) -> None:
        match event:
            case Connected():
                self.opened = event.at
                record(self.environment, WS, WS_CONNECT, (event.at - self.started) * 1000)
            case Arrived():
                self._arrived(event)
                seen = self.seen
                if seen.terminal_at is not None and time.perf_counter() - seen.terminal_at >= self.hold_s:
                    self.follower.stop()

    def _arrived(self, arrived: Arrived) -> None:
        environment, seen, message, arrival = self.environment, self.seen, arrived.message, arrived.at
        if arrived.problems:  # not JSON, or not an object: nothing to measure in it
            raise SocketBroken(f"unreadable message: {', '.join(arrived.problems)}: {message.get('raw')!r}")
        seen.messages += 1
        seen.last = message
        if self.previous is None:
            record(environment, WS, WS_FIRST, (arrival - self.started) * 1000)
        else:
            gap = arrival - self.previous
            seen.max_gap_s = max(seen.max_gap_s, gap)
            record(environment, WS, WS_GAP, gap * 1000)
        self.previous = arrival
        kind, seq, step = message.get("type"), message.get("seq"), arrived.step
        if step.missing:
            seen.missing += len(step.missing)
            hole = SeqHole(f"seqs {seq_ranges(step.missing)} covered by no message (before {kind} {seq})")
            record(environment, WS, WS_MISSING, 0, exception=hole)
        if step.duplicate or step.backwards:
            problem = SocketBroken(f"{kind} seq {seq} {'repeated' if step.duplicate else 'went back'}")
            record(environment, WS, WS_ORDER, 0, exception=problem)
        if kind in ADVANCING_TYPES:
            seen.events += 1
            if (event_epoch := _event_epoch(message)) is not None:
                record(environment, WS, WS_LAG, max(0.0, arrived.wall - event_epoch) * 1000)
        if seen.terminal_at is None and message.get("status") in TERMINAL_STATUSES:
            seen.terminal_at = arrival


def _raise_for(
    environment: Environment, ending: Ending, listener: _Listener, *, max_silence_s: float, timeout_s: float
) -> None:
    """The follow's end as this user reports it: a refusal, a broken socket, or nothing (it was stopped)."""
    error = ending.error
    match ending.why:
        case Why.STOPPED:
            return
        case Why.REFUSED if ending.http_status is not None:
            raise SocketRefused(f"HTTP {ending.http_status} on the handshake") from error
        case Why.REFUSED if listener.seen.messages == 0:
            raise SocketRefused(f"closed with {ending.close_code}")
        case Why.REFUSED | Why.POLICY | Why.DROPPED:
            raise SocketBroken(f"closed by the server ({ending.close_code})")
        case Why.SILENCE:
            silence = TimeoutError(f"nothing for {max_silence_s:g} s")
            record(environment, WS, WS_SILENCE, max_silence_s * 1000, exception=silence)
            raise SocketBroken(f"nothing for {max_silence_s:g} s") from silence
        case Why.UNREACHABLE:
            record(environment, WS, WS_CONNECT, (time.perf_counter() - listener.started) * 1000, exception=error)
            raise SocketBroken(f"connect failed: {error}") from error
        case Why.DEADLINE:
            raise SocketBroken(f"no terminal status within {timeout_s:.0f} s")


class _Fallback:
    """In ``--progress auto``, the first refusal in a process switches that process to polling."""

    refused: str | None = None


def follow(environment: Environment, client: HttpSession, host: str, token: str, batch_id: str) -> tuple[dict, float]:
    """Follow a batch to its terminal status as ``--progress`` says; the status and when it was seen.

    ``auto`` uses the socket and, the first time the server refuses it, polls for the rest of the run
    in this process, so the scenario also runs against a target without a socket (SocketUser is the
    one that fails then).
    """
    mode = option(environment, "progress")
    timeout = option(environment, "batch_timeout")
    interval = option(environment, "poll_interval")
    if mode == "poll" or (mode == "auto" and _Fallback.refused):
        status = poll_until_terminal(client, batch_id, interval_s=interval, timeout_s=timeout)
        return status, time.perf_counter()
    try:
        seen = watch(
            environment,
            host,
            token,
            batch_id,
            hold_s=0,
            max_silence_s=option(environment, "max_silence"),
            timeout_s=timeout,
        )
    except SocketRefused as exc:
        if mode == "socket":
            raise SocketBroken(f"socket refused: {exc}") from exc
        _Fallback.refused = str(exc)
        log.warning("progress socket refused (%s): following batches by polling from now on", exc)
        status = poll_until_terminal(client, batch_id, interval_s=interval, timeout_s=timeout)
        return status, time.perf_counter()
    return seen.last or {}, seen.terminal_at or time.perf_counter()
