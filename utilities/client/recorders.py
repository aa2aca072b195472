"""Record a batch's progress as a client sees it (progress socket or status polling) and judge the cadence.

The recorders run on plain threads (``websockets.sync``, ``httpx``), so pytest, Locust (gevent patches
threads into greenlets) and ``batchqa watch`` share them. Every recorded message is checked against
its JSON Schema; ``CadenceReport`` turns a recording into numbers and a ``problems()`` list.
Seq rules (docs/contract.md, "Progress WebSocket"): every message covers ``from_seq``..``seq``;
advancing seqs strictly increase and never repeat, and the ranges a recorder receives join without a
hole, across reconnections with ``last_seq`` too. A snapshot covers 1..seq; a heartbeat covers
nothing new. A seq no message covered is reported as missing.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Self
from urllib.parse import urlencode

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from utilities.client.api import TERMINAL_STATUSES
from utilities.client.schemas import schema_problems

log = logging.getLogger(__name__)

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
RETRY_INTERVAL_S = 0.2
STATE_FIELDS = ("status", "total", "processed", "succeeded", "failed", "cancelled", "percent")


class RecorderStopped(RuntimeError):
    """The recorder ended (refused, gave up reconnecting, or was stopped) before the awaited condition."""


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


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class _Recording:
    """What both recorders share: the messages, a condition to wait on, and a background thread."""

    source = "?"

    def __init__(
        self, base_url: str, batch_id: str, *, stop_on_terminal: bool, on_message: Callable[[Received], None] | None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.batch_id = batch_id
        self.stop_on_terminal = stop_on_terminal
        self.on_message = on_message
        self.messages: list[Received] = []
        self.connections: list[Connection] = []
        self.errors: list[str] = []
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = False

    def run(self) -> None:
        raise NotImplementedError

    def _run_guarded(self) -> None:
        try:
            self.run()
        except Exception as exc:  # a bug here must show in the report, not vanish with the thread
            log.exception("%s recorder for %s failed", self.source, self.batch_id)
            self.errors.append(f"recorder crashed: {type(exc).__name__}: {exc}")
            self._finish()

    def start(self) -> Self:
        """Record on a daemon thread; returns self. ``with recorder:`` starts and stops it."""
        self._thread = threading.Thread(target=self._run_guarded, name=f"{self.source}-{self.batch_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._interrupt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _interrupt(self) -> None:
        """Unblock the recording thread (close its socket, wake its waits)."""

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the recording to end by itself (terminal state, refusal); True if it did."""
        with self._cond:
            return self._cond.wait_for(lambda: self._done, timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _begin(self) -> None:
        self.started_at = time.monotonic()

    def _finish(self) -> None:
        with self._cond:
            self.finished_at = time.monotonic()
            self._done = True
            self._cond.notify_all()

    def _add(self, message: dict[str, Any], problems: Iterable[str], connection: int) -> Received:
        received = Received(message, time.monotonic(), time.time(), connection, tuple(problems))
        with self._cond:
            self.messages.append(received)
            self._cond.notify_all()
        if self.on_message is not None:
            self.on_message(received)
        return received

    @property
    def last_seq(self) -> int | None:
        seqs = [m.seq for m in self.messages if m.seq is not None]
        return max(seqs) if seqs else None

    @property
    def terminal(self) -> Received | None:
        return next((m for m in self.messages if m.status in TERMINAL_STATUSES), None)

    def wait_until(self, condition: Callable[[_Recording], bool], timeout: float) -> None:
        """Block until ``condition(self)`` holds; ``TimeoutError`` or ``RecorderStopped`` otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition(self):
                if self._done:
                    raise RecorderStopped(f"{self.source} recorder ended first: {self._describe()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout:.1f} s: {self._describe()}")
                self._cond.wait(remaining)

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float, *, after: int = 0) -> Received:
        """The first message at index >= ``after`` that satisfies ``predicate``, waiting for it if need be."""
        position = after
        found: Received | None = None

        def seen(recorder: _Recording) -> bool:
            nonlocal position, found
            while found is None and position < len(recorder.messages):
                candidate = recorder.messages[position]
                position += 1
                if predicate(candidate):
                    found = candidate
            return found is not None

        self.wait_until(seen, timeout)
        assert found is not None
        return found

    def wait_for_terminal(self, timeout: float) -> Received:
        return self.wait_for(lambda m: m.status in TERMINAL_STATUSES, timeout)

    def _describe(self) -> str:
        tail = [f"{m.kind}#{m.seq}:{m.status}:{m.message.get('processed')}" for m in self.messages[-5:]]
        closes = [c.close_code for c in self.connections if c.close_code is not None]
        return f"{len(self.messages)} messages (last {tail}), closes {closes}, errors {self.errors}"

    def report(
        self, *, max_gap_s: float | None = None, require_terminal: bool = True, strict_seq: bool = False
    ) -> CadenceReport:
        with self._cond:
            messages, connections = list(self.messages), list(self.connections)
        return CadenceReport.build(
            messages,
            connections,
            source=self.source,
            batch_id=self.batch_id,
            started_at=self.started_at,
            finished_at=self.finished_at,
            errors=self.errors,
            max_gap_s=max_gap_s,
            require_terminal=require_terminal,
            strict_seq=strict_seq,
        )


class WebSocketRecorder(_Recording):
    """Records every message of a batch's progress socket with its arrival time.

    Authenticates with a bearer token (header, or ``?token=`` when ``token_in_query``) or the
    session ``cookie``; sends ``origin`` when given, as a browser would. When the server drops the
    connection (restart, network) it reconnects with ``last_seq`` = the highest seq seen, for up to
    ``reconnect_timeout_s``; a refusal (4401/4403/4404) or a policy close (1008/1009) ends it.
    ``disconnect()``/``reconnect()`` drop and resume the connection on demand.
    """

    source = "websocket"

    def __init__(
        self,
        base_url: str,
        batch_id: str,
        *,
        token: str | None = None,
        token_in_query: bool = False,
        cookie: str | None = None,
        origin: str | None = None,
        last_seq: int | None = None,
        stop_on_terminal: bool = True,
        reconnect_timeout_s: float = 30.0,
        open_timeout_s: float = 10.0,
        compression: str | None = "deflate",
        on_message: Callable[[Received], None] | None = None,
    ) -> None:
        super().__init__(base_url, batch_id, stop_on_terminal=stop_on_terminal, on_message=on_message)
        self.token = token
        self.token_in_query = token_in_query
        self.cookie = cookie
        self.origin = origin
        self.initial_last_seq = last_seq
        self.reconnect_timeout_s = reconnect_timeout_s
        self.open_timeout_s = open_timeout_s
        self.compression = compression
        self._resume = threading.Event()
        self._resume.set()
        self._ws: ClientConnection | None = None

    def disconnect(self) -> None:
        """Close the current connection and stay away until ``reconnect()`` (events keep happening)."""
        self._resume.clear()
        self._interrupt()

    def reconnect(self) -> None:
        self._resume.set()

    def _interrupt(self) -> None:
        with self._cond:
            ws = self._ws
        if ws is not None:
            ws.close()
        if self._stop.is_set():
            self._resume.set()

    def _headers(self) -> dict[str, str]:
        headers = {}
        if self.token and not self.token_in_query:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.cookie:
            headers["Cookie"] = f"{SESSION_COOKIE}={self.cookie}"
        return headers

    def url(self, last_seq: int | None = None) -> str:
        token = self.token if self.token_in_query else None
        return ws_url(self.base_url, self.batch_id, last_seq=last_seq, token=token)

    def run(self) -> None:
        """Record until stopped, terminal (with ``stop_on_terminal``), refused, or out of retries."""
        self._begin()
        retry_until: float | None = None
        try:
            while not self._stop.is_set():
                if not self._resume.is_set():
                    self._resume.wait()
                    continue
                # Resume from the highest seq seen; a snapshot or heartbeat vouches for its seq too.
                last_seq = self.last_seq if self.messages else self.initial_last_seq
                try:
                    ws = connect(
                        self.url(last_seq),
                        origin=self.origin,  # type: ignore[arg-type]
                        additional_headers=self._headers(),
                        open_timeout=self.open_timeout_s,
                        compression=self.compression,
                    )
                except InvalidStatus as exc:
                    self.errors.append(f"handshake refused: HTTP {exc.response.status_code}")
                    return
                # A server (re)starting can reset the connection at any step of the opening handshake: in
                # connect() (OSError), while the request is sent (websockets turns that into ConnectionClosed)
                # or while the response is awaited (InvalidHandshake). Each is a failed attempt, retried alike.
                except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                    now = time.monotonic()
                    retry_until = retry_until or now + self.reconnect_timeout_s
                    if now >= retry_until:
                        self.errors.append(f"could not connect for {self.reconnect_timeout_s:.0f} s: {exc}")
                        return
                    self._stop.wait(RETRY_INTERVAL_S)  # a retry interval, not a synchronisation
                    continue
                retry_until = None
                with ws:  # websockets >= 17.1 wants every connection used as a context manager
                    keep_going = self._record(ws, last_seq)
                if not keep_going:
                    return
        finally:
            self._finish()

    def _record(self, ws: ClientConnection, last_seq: int | None) -> bool:
        """Read one connection to its end; False when recording should stop rather than reconnect."""
        connection = Connection(len(self.connections), time.monotonic(), time.time(), last_seq)
        with self._cond:
            self.connections.append(connection)
            self._ws = ws
        try:
            while True:
                try:
                    raw = ws.recv()
                except ConnectionClosed as exc:
                    connection.close_code = exc.rcvd.code if exc.rcvd is not None else 1006
                    connection.close_reason = exc.rcvd.reason if exc.rcvd is not None else ""
                    break
                try:
                    message = json.loads(raw)
                    problems = message_problems(message) if isinstance(message, dict) else ["not a JSON object"]
                except ValueError:
                    message, problems = {"type": "<not JSON>", "raw": str(raw)[:200]}, ["not JSON"]
                received = self._add(message, problems, connection.index)
                if self.stop_on_terminal and received.status in TERMINAL_STATUSES:
                    self._stop.set()
                    break
        finally:
            ws.close()
            with self._cond:
                self._ws = None
                connection.closed_at = time.monotonic()
                self._cond.notify_all()
        if self._stop.is_set():
            return False
        if connection.close_code in REFUSALS:
            self.errors.append(f"closed by the server: {connection.close_code} {connection.close_reason}".rstrip())
            return False
        return True


class PollingRecorder(_Recording):
    """Polls the status endpoint every ``interval_s`` on a fixed grid (a slow poll skips ticks, never bunches)."""

    source = "polling"

    def __init__(
        self,
        base_url: str,
        batch_id: str,
        *,
        token: str | None = None,
        interval_s: float = 2.0,
        stop_on_terminal: bool = True,
        request_timeout_s: float = 10.0,
        on_message: Callable[[Received], None] | None = None,
    ) -> None:
        super().__init__(base_url, batch_id, stop_on_terminal=stop_on_terminal, on_message=on_message)
        self.token = token
        self.interval_s = interval_s
        self.request_timeout_s = request_timeout_s

    def _interrupt(self) -> None:
        self._stop.set()

    def run(self) -> None:
        self._begin()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        connection = Connection(0, time.monotonic(), time.time())
        self.connections.append(connection)
        path = STATUS_PATH.format(batch_id=self.batch_id)
        try:
            with httpx.Client(base_url=self.base_url, headers=headers, timeout=self.request_timeout_s) as http:
                tick = time.monotonic()
                while not self._stop.is_set():
                    try:
                        response = http.get(path)
                    except httpx.TransportError as exc:  # e.g. a restart: keep polling
                        self.errors.append(f"poll failed: {type(exc).__name__}")
                    else:
                        if response.status_code in (401, 403, 404):
                            self.errors.append(f"status endpoint answered {response.status_code}")
                            return
                        if response.status_code == 200:
                            body = response.json()
                            received = self._add(body, schema_problems("batch_status", body), 0)
                            if self.stop_on_terminal and received.status in TERMINAL_STATUSES:
                                return
                    now = time.monotonic()
                    tick += self.interval_s * max(1, math.ceil((now - tick) / self.interval_s))
                    self._stop.wait(max(0.0, tick - now))  # the polling cadence itself
        finally:
            connection.closed_at = time.monotonic()
            self._finish()


@dataclass(frozen=True)
class SocketOutcome:
    """How a one-off socket attempt went: the messages read, and the close code (None: still open)."""

    messages: list[dict[str, Any]]
    close_code: int | None
    close_reason: str = ""
    http_status: int | None = None

    @property
    def first(self) -> dict[str, Any] | None:
        return self.messages[0] if self.messages else None


def probe_socket(
    base_url: str,
    batch_id: str,
    *,
    headers: Mapping[str, str] | None = None,
    origin: str | None = None,
    query_token: str | None = None,
    send: Sequence[str | bytes] = (),
    until_messages: int | None = None,
    timeout: float = 10.0,
) -> SocketOutcome:
    """Connect, send ``send``, then read until the server closes (or ``until_messages`` arrived, or ``timeout``).

    For refusal and limit checks: a refused socket is accepted and closed with its code at once.
    """
    url = ws_url(base_url, batch_id, token=query_token)
    messages: list[dict[str, Any]] = []
    try:
        ws = connect(url, origin=origin, additional_headers=dict(headers or {}), open_timeout=timeout)  # type: ignore[arg-type]
    except InvalidStatus as exc:
        return SocketOutcome([], None, http_status=exc.response.status_code)
    with ws:
        try:
            for payload in send:
                ws.send(payload)
            deadline = time.monotonic() + timeout
            while (remaining := deadline - time.monotonic()) > 0:
                messages.append(json.loads(ws.recv(timeout=remaining)))
                if until_messages is not None and len(messages) >= until_messages:
                    break
        except ConnectionClosed as exc:
            if exc.rcvd is None:
                return SocketOutcome(messages, 1006)
            return SocketOutcome(messages, exc.rcvd.code, exc.rcvd.reason)
        except TimeoutError:
            pass
    return SocketOutcome(messages, None)


@dataclass
class CadenceReport:
    """What a client saw of one batch's progress: cadence, seq integrity, state consistency, ETA accuracy.

    Gaps are measured between consecutive messages of one connection (the server's promise);
    ``longest_silence_s`` also spans reconnections and the wait for the first message. Jitter is the
    standard deviation of the gaps. Lag is arrival time minus ``event_time`` for live advancing
    messages (replayed ones are history, not lag). ETA error is, per running state, (event time +
    ``eta_seconds``) minus the real finish time: positive means the ETA said later than it was.
    """

    source: str
    batch_id: str
    messages: int
    by_type: dict[str, int]
    connections: int
    duration_s: float | None
    time_to_first_message_s: float | None
    time_to_first_progress_s: float | None
    gap_mean_s: float | None
    gap_p50_s: float | None
    gap_p95_s: float | None
    gap_max_s: float | None
    jitter_s: float | None
    longest_silence_s: float | None
    lag_p50_s: float | None
    lag_p95_s: float | None
    lag_max_s: float | None
    last_seq: int | None
    skipped_seq: int
    duplicate_seq: list[int]
    out_of_order_seq: list[int]
    missing_seq: list[int]
    percent_never_decreased: bool
    counts_consistent: bool
    terminal_status: str | None
    final_state: dict[str, Any] | None
    eta_samples: int
    eta_error_p50_s: float | None
    eta_error_max_s: float | None
    eta_bias_s: float | None
    close_codes: list[int]
    schema_problems: list[str] = field(default_factory=list)
    state_problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    max_gap_allowed_s: float | None = None
    require_terminal: bool = True
    strict_seq: bool = False

    def problems(self) -> list[str]:
        """Everything that breaks the contract or the stated limits; empty when the run was clean."""
        found = [f"schema: {p}" for p in self.schema_problems]
        if self.duplicate_seq:
            found.append(f"duplicate seq: {self.duplicate_seq[:20]}")
        if self.out_of_order_seq:
            found.append(f"seq went backwards at: {self.out_of_order_seq[:20]}")
        if self.missing_seq:
            found.append(f"missing seq (covered by no message): {seq_ranges(self.missing_seq)}")
        found.extend(self.state_problems)
        if self.require_terminal and self.terminal_status is None:
            found.append("no message with a terminal status arrived")
        if self.max_gap_allowed_s is not None and (self.gap_max_s or 0.0) > self.max_gap_allowed_s:
            found.append(f"longest gap {self.gap_max_s:.3f} s exceeds {self.max_gap_allowed_s:.3f} s")
        found.extend(self.errors)
        return found

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": self.problems()}

    def render(self) -> str:
        """A few lines a person reads at the end of ``batchqa watch``."""

        def s(value: float | None) -> str:
            return "–" if value is None else f"{value:.3f} s"

        types = ", ".join(f"{k} {v}" for k, v in sorted(self.by_type.items()))
        final = self.final_state or {}
        lines = [
            f"{self.source} on batch {self.batch_id}: {self.messages} messages ({types}) "
            f"over {s(self.duration_s)}, {self.connections} connection(s)",
            f"gaps: mean {s(self.gap_mean_s)}, p50 {s(self.gap_p50_s)}, p95 {s(self.gap_p95_s)}, "
            f"max {s(self.gap_max_s)}; jitter {s(self.jitter_s)}; longest silence {s(self.longest_silence_s)}",
            f"first message after {s(self.time_to_first_message_s)}, first progress after "
            f"{s(self.time_to_first_progress_s)}; lag p50 {s(self.lag_p50_s)}, p95 {s(self.lag_p95_s)}, "
            f"max {s(self.lag_max_s)}",
            f"seq: last {self.last_seq}, merged by coalescing {self.skipped_seq}, duplicates "
            f"{len(self.duplicate_seq)}, backwards {len(self.out_of_order_seq)}, missing {len(self.missing_seq)}",
            f"percent never decreased: {self.percent_never_decreased}; counts consistent: {self.counts_consistent}; "
            f"terminal: {self.terminal_status or 'none'}",
            f"final: {final.get('status')} {final.get('processed')}/{final.get('total')} "
            f"(succeeded {final.get('succeeded')}, failed {final.get('failed')}, cancelled {final.get('cancelled')})",
            f"ETA error over {self.eta_samples} estimates: p50 {s(self.eta_error_p50_s)}, "
            f"max {s(self.eta_error_max_s)}, bias {s(self.eta_bias_s)}",
        ]
        problems = self.problems()
        lines.append("problems: none" if not problems else "problems:\n  " + "\n  ".join(problems))
        return "\n".join(lines)

    @classmethod
    def build(
        cls,
        messages: Sequence[Received],
        connections: Sequence[Connection],
        *,
        source: str,
        batch_id: str,
        started_at: float | None = None,
        finished_at: float | None = None,
        errors: Iterable[str] = (),
        max_gap_s: float | None = None,
        require_terminal: bool = True,
        strict_seq: bool = False,
    ) -> CadenceReport:
        started = started_at if started_at is not None else (messages[0].at if messages else None)
        gaps = _gaps(messages)
        seqs = _seq_checks(messages, connections, strict=strict_seq)
        state_problems, percent_ok, counts_ok = _state_checks(messages)
        terminal = next((m for m in messages if m.status in TERMINAL_STATUSES), None)
        first_progress = _first_progress(messages)
        eta_errors = _eta_errors(messages)
        lags = _lags(messages, connections)
        silences = [b.at - a.at for a, b in itertools.pairwise(messages)]
        if messages and started is not None:
            silences.append(messages[0].at - started)
        if messages and finished_at is not None and terminal is None:
            silences.append(finished_at - messages[-1].at)
        last = messages[-1] if messages else None
        return cls(
            source=source,
            batch_id=batch_id,
            messages=len(messages),
            by_type=dict(Counter(m.kind for m in messages)),
            connections=len(connections),
            duration_s=(finished_at - started) if finished_at is not None and started is not None else None,
            time_to_first_message_s=(messages[0].at - started) if messages and started is not None else None,
            time_to_first_progress_s=(first_progress.at - started) if first_progress and started is not None else None,
            gap_mean_s=statistics.fmean(gaps) if gaps else None,
            gap_p50_s=percentile(gaps, 50),
            gap_p95_s=percentile(gaps, 95),
            gap_max_s=max(gaps) if gaps else None,
            jitter_s=statistics.pstdev(gaps) if len(gaps) > 1 else None,
            longest_silence_s=max(silences) if silences else None,
            lag_p50_s=percentile(lags, 50),
            lag_p95_s=percentile(lags, 95),
            lag_max_s=max(lags) if lags else None,
            last_seq=max((m.seq for m in messages if m.seq is not None), default=None),
            skipped_seq=seqs.skipped,
            duplicate_seq=seqs.duplicates,
            out_of_order_seq=seqs.backwards,
            missing_seq=seqs.missing,
            percent_never_decreased=percent_ok,
            counts_consistent=counts_ok,
            terminal_status=terminal.status if terminal else None,
            final_state={k: last.message.get(k) for k in ("seq", *STATE_FIELDS)} if last else None,
            eta_samples=len(eta_errors),
            eta_error_p50_s=percentile([abs(e) for e in eta_errors], 50),
            eta_error_max_s=max((abs(e) for e in eta_errors), default=None),
            eta_bias_s=statistics.fmean(eta_errors) if eta_errors else None,
            close_codes=[c.close_code for c in connections if c.close_code is not None],
            schema_problems=[f"{m.kind}#{m.seq}: {p}" for m in messages for p in m.problems],
            state_problems=state_problems,
            errors=list(errors),
            max_gap_allowed_s=max_gap_s,
            require_terminal=require_terminal,
            strict_seq=strict_seq,
        )


def _gaps(messages: Sequence[Received]) -> list[float]:
    """Arrival gaps between consecutive messages of the same connection."""
    return [b.at - a.at for a, b in itertools.pairwise(messages) if a.connection == b.connection]


@dataclass
class _SeqFindings:
    duplicates: list[int] = field(default_factory=list)
    backwards: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    skipped: int = 0  # events that arrived inside a later message (coalesced), not on their own


def _seq_checks(messages: Sequence[Received], connections: Sequence[Connection], *, strict: bool) -> _SeqFindings:
    """Coverage: every seq from the first one covered must be inside some message's from_seq..seq.

    ``covered`` is the seq up to which everything was covered. A snapshot resets it to its seq (it
    stands for the whole history), except on a connection resumed with ``last_seq``, which owes a
    replay: a snapshot there leaves last_seq+1..seq missing. A resumed connection starts from its
    ``last_seq``. A heartbeat covers nothing new, so one beyond ``covered`` leaves a hole too. With
    ``strict``, every event must also arrive as its own message (a replay is never coalesced).
    """
    found = _SeqFindings()
    resumed_from = {c.index: c.last_seq for c in connections}
    seen: set[int] = set()
    high: int | None = None
    covered: int | None = None
    connection: int | None = None
    opening = False
    start: int | None = None
    for m in messages:
        if m.connection != connection:
            connection, opening = m.connection, True
            start = resumed_from.get(connection)
            if start is not None:
                covered = start
        s, f = m.seq, m.from_seq
        if s is None or f is None:
            continue
        advancing = m.kind in ADVANCING_TYPES
        if advancing and s in seen:
            found.duplicates.append(s)
        elif high is not None and s < high:
            found.backwards.append(s)
        if m.kind == "snapshot":
            if opening and start is not None and s > start:
                found.missing.extend(range(start + 1, s + 1))
            covered = s
        elif advancing:
            if covered is not None and f > covered + 1:
                found.missing.extend(range(covered + 1, f))
            merged = range(max(f, (covered or 0) + 1), s)
            if strict:
                found.missing.extend(merged)
            else:
                found.skipped += len(merged)
            seen.add(s)
            covered = s if covered is None else max(covered, s)
        elif covered is not None and s > covered:
            found.missing.extend(range(covered + 1, s + 1))  # a heartbeat vouching for events never sent
            covered = s
        high = s if high is None else max(high, s)
        opening = False
    return found


def _state_checks(messages: Sequence[Received]) -> tuple[list[str], bool, bool]:
    """Per-message count rules, one state per seq, and percent never decreasing (a retry starts over)."""
    problems: list[str] = []
    percent_ok = counts_ok = True
    by_seq: dict[int, tuple[Any, ...]] = {}
    previous: Received | None = None
    for m in messages:
        msg = m.message
        label = f"{m.kind}#{m.seq}"
        try:
            total, processed, succeeded, failed = msg["total"], msg["processed"], msg["succeeded"], msg["failed"]
            cancelled, percent, status = msg["cancelled"], msg["percent"], msg["status"]
        except KeyError:
            continue  # the schema check names what is missing
        rules = [
            (processed == succeeded + failed, f"processed {processed} != succeeded {succeeded} + failed {failed}"),
            (processed + cancelled <= total, f"processed {processed} + cancelled {cancelled} > total {total}"),
            (
                total > 0 and abs(percent - 100 * processed / total) <= 0.05 + 1e-9,
                f"percent {percent} does not match {processed}/{total}",
            ),
            (
                status not in FINISHED_STATUSES or processed + cancelled == total,
                f"{status} with {processed} + {cancelled} of {total} rows settled",
            ),
            (status != "completed" or failed == 0, f"completed with {failed} failed rows"),
            (status != "failed" or succeeded == 0, f"failed with {succeeded} succeeded rows"),
        ]
        for ok, text in rules:
            if not ok:
                counts_ok = False
                problems.append(f"{label}: {text}")
        state = tuple(msg.get(k) for k in STATE_FIELDS)
        if m.seq is not None and by_seq.setdefault(m.seq, state) != state:
            counts_ok = False
            problems.append(f"{label}: a different state than another message with seq {m.seq}")
        if previous is not None:
            restarted = status == "queued" and previous.status != "queued"  # retry: failed rows run again
            if not restarted and percent < previous.message.get("percent", 0):
                percent_ok = False
                problems.append(f"{label}: percent fell from {previous.message['percent']} to {percent}")
        previous = m
    return problems, percent_ok, counts_ok


def _first_progress(messages: Sequence[Received]) -> Received | None:
    """The first message showing rows done beyond what the first message showed."""
    if not messages:
        return None
    start = messages[0].message.get("processed", 0)
    return next((m for m in messages if m.message.get("processed", 0) > start), None)


def _event_epoch(m: Received) -> float:
    return parse_time(m.message.get("event_time")) or m.wall


def _eta_errors(messages: Sequence[Received]) -> list[float]:
    finish = next((m for m in messages if m.status in FINISHED_STATUSES), None)
    if finish is None:
        return []
    actual = parse_time(finish.message.get("event_time")) or parse_time(finish.message.get("finished_at"))
    actual = actual or finish.wall
    errors, used = [], set()
    for m in messages:
        eta = m.message.get("eta_seconds")
        # Heartbeats repeat an old estimate at a new time; each state (seq) is judged once.
        if m.kind == "heartbeat" or m.status != "running" or not isinstance(eta, int | float) or m.seq in used:
            continue
        used.add(m.seq)
        errors.append(_event_epoch(m) + eta - actual)
    return errors


def _lags(messages: Sequence[Received], connections: Sequence[Connection]) -> list[float]:
    opened = {c.index: c.opened_wall for c in connections}
    lags = []
    for m in messages:
        event = parse_time(m.message.get("event_time"))
        if m.kind not in ADVANCING_TYPES or event is None:
            continue
        if event < opened.get(m.connection, -math.inf):
            continue  # replayed from storage: it happened before this connection existed
        lags.append(m.wall - event)
    return lags
