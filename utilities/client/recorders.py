"""Record a batch's progress as a client sees it: on the progress socket (reconnecting with ``last_seq``) or
by polling the status endpoint.

The recorders run on plain threads (``websockets.sync``, ``httpx``), so pytest, Locust (gevent patches
threads into greenlets) and ``batchqa watch`` share them. Every recorded message is checked against its
JSON Schema as it arrives; ``report()`` turns a recording into a ``CadenceReport``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Self

import httpx

from utilities.client.api import TERMINAL_STATUSES
from utilities.client.cadence_report import CadenceReport
from utilities.client.progress_messages import STATUS_PATH, Connection, Received
from utilities.client.schemas import schema_problems
from utilities.client.socket_follower import (
    Arrived,
    Closed,
    Connected,
    Reconnect,
    SocketEvent,
    SocketFollower,
    Why,
)

log = logging.getLogger(__name__)

RETRY_INTERVAL_S = 0.2


class RecorderStopped(RuntimeError):
    """The recorder ended (refused, gave up reconnecting, or was stopped) before the awaited condition."""


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

    def _add(
        self,
        message: dict[str, Any],
        problems: Iterable[str],
        connection: int,
        *,
        at: float | None = None,
        wall: float | None = None,
    ) -> Received:
        """Keep one message; ``at``/``wall`` say when it arrived (now, when not given)."""
        at, wall = (time.monotonic() if at is None else at), (time.time() if wall is None else wall)
        received = Received(message, at, wall, connection, tuple(problems))
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
    connection (restart, network) it reconnects with ``last_seq`` = the newest seq covered, for up to
    ``reconnect_timeout_s``; a refusal (4401/4403/4404) or a policy close (1008/1009) ends it.
    ``disconnect()``/``reconnect()`` drop and resume the connection on demand. The socket itself is
    ``SocketFollower``'s; this keeps the recording.
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
        self._follower = SocketFollower(
            self.base_url,
            batch_id,
            token=token,
            token_in_query=token_in_query,
            cookie=cookie,
            origin=origin,
            last_seq=last_seq,
            open_timeout_s=open_timeout_s,
            reconnect=Reconnect(budget_s=reconnect_timeout_s, interval_s=RETRY_INTERVAL_S),
            compression=compression,
            stop=self._stop,
        )

    def disconnect(self) -> None:
        """Close the current connection and stay away until ``reconnect()`` (events keep happening)."""
        self._follower.pause()

    def reconnect(self) -> None:
        self._follower.resume()

    def _interrupt(self) -> None:
        if self._stop.is_set():
            self._follower.stop()
        else:
            self._follower.drop()

    def url(self, last_seq: int | None = None) -> str:
        return self._follower.url(self.base_url, last_seq)

    def run(self) -> None:
        """Record until stopped, terminal (with ``stop_on_terminal``), refused, or out of retries."""
        self._begin()
        try:
            ending = self._follower.follow(self._on_event)
            if ending.why is not Why.STOPPED:
                self.errors.append(ending.detail)
        finally:
            self._finish()

    def _on_event(self, event: SocketEvent) -> None:
        match event:
            case Connected():
                with self._cond:
                    self.connections.append(Connection(event.index, event.at, event.wall, event.last_seq))
            case Arrived():
                received = self._add(event.message, event.problems, event.connection, at=event.at, wall=event.wall)
                if self.stop_on_terminal and received.status in TERMINAL_STATUSES:
                    self._stop.set()
            case Closed():
                with self._cond:
                    connection = self.connections[event.connection]
                    connection.close_code, connection.close_reason = event.code, event.reason
                    connection.closed_at = event.at
                    self._cond.notify_all()


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
