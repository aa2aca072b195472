"""Hold a batch's progress WebSocket (docs/contract.md) and report lag and gaps as Locust entries."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from locust.clients import HttpSession
from locust.env import Environment
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from perf.users.common import option, poll_until_terminal, record
from utilities.client.api import TERMINAL_STATUSES
from utilities.client.progress_messages import ws_url
from utilities.perf.names import WS, WS_CONNECT, WS_FIRST, WS_GAP, WS_HELD, WS_LAG, WS_MISSING, WS_ORDER, WS_SILENCE

log = logging.getLogger(__name__)

EVENT_TYPES = frozenset({"progress", "status", "completed", "error"})
REFUSAL_CODES = frozenset({4401, 4403, 4404})


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
    Each hole in the covered seqs (a message whose ``from_seq`` is past the newest seq covered + 1,
    or a heartbeat ahead of it) is one failed ``missing`` entry naming the range.
    """
    seen = Watch()
    started = time.perf_counter()
    try:
        ws = connect(
            ws_url(host, batch_id),
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=30,
            ping_interval=None,  # silence is what is measured; the server's heartbeats keep it alive
            max_size=64 * 1024,
        )
    except InvalidStatus as exc:
        raise SocketRefused(f"HTTP {exc.response.status_code} on the handshake") from exc
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        record(environment, WS, WS_CONNECT, (time.perf_counter() - started) * 1000, exception=exc)
        raise SocketBroken(f"connect failed: {exc}") from exc
    opened = time.perf_counter()
    record(environment, WS, WS_CONNECT, (opened - started) * 1000)
    try:
        with ws:  # the context manager closes it (websockets 17 warns about a socket used without one)
            _receive(environment, ws, seen, started, hold_s=hold_s, max_silence_s=max_silence_s, timeout_s=timeout_s)
    finally:
        record(environment, WS, WS_HELD, (time.perf_counter() - opened) * 1000)
    return seen


def _receive(
    environment: Environment,
    ws: Any,
    seen: Watch,
    started: float,
    *,
    hold_s: float,
    max_silence_s: float,
    timeout_s: float,
) -> None:
    previous: float | None = None
    last_seq = -1
    covered: int | None = None  # every seq up to this one was covered by some message
    while True:
        now = time.perf_counter()
        if seen.terminal_at is not None and now - seen.terminal_at >= hold_s:
            return
        if now - started > timeout_s:
            raise SocketBroken(f"no terminal status within {timeout_s:.0f} s")
        try:
            raw = ws.recv(timeout=max_silence_s)
        except TimeoutError as exc:
            record(environment, WS, WS_SILENCE, max_silence_s * 1000, exception=exc)
            raise SocketBroken(f"nothing for {max_silence_s:g} s") from exc
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            if seen.messages == 0 and code in REFUSAL_CODES:
                raise SocketRefused(f"closed with {code}") from exc
            raise SocketBroken(f"closed by the server ({code})") from exc
        arrival_wall, arrival = time.time(), time.perf_counter()
        message = json.loads(raw)
        seen.messages += 1
        seen.last = message
        if previous is None:
            record(environment, WS, WS_FIRST, (arrival - started) * 1000)
        else:
            gap = arrival - previous
            seen.max_gap_s = max(seen.max_gap_s, gap)
            record(environment, WS, WS_GAP, gap * 1000)
        previous = arrival
        seq = message.get("seq", -1)
        covered = _check_coverage(environment, seen, message, covered)
        if message.get("type") in EVENT_TYPES:
            seen.events += 1
            if seq <= last_seq:
                problem = SocketBroken(f"{message['type']} seq {seq} after seq {last_seq}")
                record(environment, WS, WS_ORDER, 0, exception=problem)
            if (event_epoch := _event_epoch(message)) is not None:
                record(environment, WS, WS_LAG, max(0.0, arrival_wall - event_epoch) * 1000)
        elif seq < last_seq:
            record(environment, WS, WS_ORDER, 0, exception=SocketBroken(f"seq went back from {last_seq} to {seq}"))
        last_seq = max(last_seq, seq)
        if seen.terminal_at is None and message.get("status") in TERMINAL_STATUSES:
            seen.terminal_at = arrival


def _check_coverage(environment: Environment, seen: Watch, message: dict[str, Any], covered: int | None) -> int | None:
    """The seq covered up to after ``message``; a hole before it is recorded as a ``missing`` failure.

    A snapshot stands for the whole history (it restarts coverage at its seq); an event message
    covers ``from_seq``..``seq``; a heartbeat covers nothing new, so one ahead of ``covered`` is a hole.
    """
    seq, kind = message.get("seq"), message.get("type")
    from_seq = message.get("from_seq", seq)
    if not isinstance(seq, int) or not isinstance(from_seq, int):
        return covered
    if kind == "snapshot" or covered is None:
        return seq
    first_missing, last_missing = covered + 1, (from_seq - 1 if kind in EVENT_TYPES else seq)
    if last_missing >= first_missing:
        seen.missing += last_missing - first_missing + 1
        hole = SeqHole(f"seqs {first_missing}..{last_missing} covered by no message (before {kind} {seq})")
        record(environment, WS, WS_MISSING, 0, exception=hole)
    return max(covered, seq)


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
