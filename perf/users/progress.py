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
from utilities.client.progress_messages import ADVANCING_TYPES, seq_ranges, ws_url
from utilities.client.seq_coverage import SeqCoverage
from utilities.perf.names import WS, WS_CONNECT, WS_FIRST, WS_GAP, WS_HELD, WS_LAG, WS_MISSING, WS_ORDER, WS_SILENCE

log = logging.getLogger(__name__)

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
    The contract's seq rules are ``SeqCoverage``'s: each hole in the covered seqs is one failed ``missing``
    entry naming the range, each repeated or backward seq one failed ``order`` entry.
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
    coverage = SeqCoverage()
    coverage.connected()
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
        kind, seq = message.get("type"), message.get("seq")
        step = coverage.add(str(kind), seq if isinstance(seq, int) else None, message.get("from_seq"))
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
                record(environment, WS, WS_LAG, max(0.0, arrival_wall - event_epoch) * 1000)
        if seen.terminal_at is None and message.get("status") in TERMINAL_STATUSES:
            seen.terminal_at = arrival


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
