"""Follow a batch's progress socket (docs/contract.md, "Progress WebSocket"): the kit's one loop that opens it,
reads it, resumes with ``last_seq`` and says how each connection ended.

``SocketFollower.follow(on_event)`` runs on the caller's thread (a plain thread, or a greenlet under Locust, which
patches threads into greenlets) until the caller stops it, the server refuses, or reconnecting is off or out of
budget. Each step reaches the caller as an event — ``Connected``, ``Arrived`` (one message, parsed, with its
problems and what it showed about the seqs), ``Closed``, ``AttemptFailed`` — and ``follow`` returns the
``Ending``. The seq rules are ``SeqCoverage``'s: a reconnection resumes from the newest covered seq, as the
contract tells a client to. What to keep of it all (a recording, Locust entries, a chaos verdict) is the caller's.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from utilities.client.progress_messages import SESSION_COOKIE, message_problems, ws_url
from utilities.client.seq_coverage import SeqCoverage, Step

log = logging.getLogger(__name__)

REFUSED_CLOSES = frozenset({4401, 4403, 4404})  # not authenticated, origin not allowed, batch missing
POLICY_CLOSES = frozenset({1008, 1009})  # a bad last_seq or too many client messages; a client message too big
NO_CLOSE_FRAME = 1006  # the connection ended without a close frame (a dead server, a reset)


class Why(StrEnum):
    """How a connection, or the whole follow, ended."""

    STOPPED = "stopped"  # the caller stopped it (a terminal status, stop()); pause() drops without stopping
    REFUSED = "refused"  # an HTTP status instead of the handshake, or a 4401/4403/4404 close
    POLICY = "policy"  # a 1008/1009 close: the server will not take this client as it is
    DROPPED = "dropped"  # closed by the server or reset by the network: worth a reconnection
    SILENCE = "silence"  # nothing arrived for ``recv_timeout_s``
    UNREACHABLE = "unreachable"  # could not connect, and no reconnecting (left) to try again
    DEADLINE = "deadline"  # ``deadline_s`` passed


RETRIED = frozenset({Why.DROPPED, Why.SILENCE})


@dataclass(frozen=True)
class Reconnect:
    """Reconnect after a drop or a silence, and retry a failed attempt ``interval_s`` later, until attempts have
    failed for ``budget_s`` in a row (None: until stopped or the deadline). A connection that opens resets it."""

    budget_s: float | None = 30.0
    interval_s: float = 0.2


@dataclass(frozen=True)
class Connected:
    """Connection number ``index`` (from 0) opened, resumed from ``last_seq`` (None: fresh, a snapshot first)."""

    index: int
    url: str
    last_seq: int | None
    at: float  # the follower's clock
    wall: float  # time.time()


@dataclass(frozen=True)
class Arrived:
    """One message as it arrived: a dict even when the frame was not a JSON object (then ``problems`` says so)."""

    connection: int
    message: dict[str, Any]
    problems: tuple[str, ...]
    step: Step  # the seqs it proved missing, a repeat, a seq gone back (SeqCoverage)
    at: float
    wall: float


@dataclass(frozen=True)
class Closed:
    """A connection ended; ``code`` is the server's close code (1006: none came), None when the follower closed it
    before the server said anything (stopped or paused between messages, or silence)."""

    connection: int
    code: int | None
    reason: str
    why: Why
    at: float


@dataclass(frozen=True)
class AttemptFailed:
    """An attempt to connect failed before the handshake completed (refused port, reset, timeout, no URL)."""

    url: str
    error: BaseException
    at: float


SocketEvent = Connected | Arrived | Closed | AttemptFailed


@dataclass(frozen=True)
class Ending:
    """Why ``follow`` returned, in words (``detail``) and in parts."""

    why: Why
    detail: str
    http_status: int | None = None
    close_code: int | None = None
    close_reason: str = ""
    error: BaseException | None = None


def _ignore(_event: SocketEvent) -> None:
    pass


class SocketFollower:
    """One batch's progress socket, followed across connections.

    ``base_url`` is a target's HTTP base URL, or a callable giving the current list of them: each attempt takes
    the next one in turn (rotation over a changing set of API processes). Authenticates with ``token`` (bearer
    header, or ``?token=`` with ``token_in_query``) or the session ``cookie``; sends ``origin`` when given.
    ``recv_timeout_s`` is the longest silence taken (None: wait for ever; heartbeats keep a live socket busy);
    ``deadline_s`` bounds the whole follow; ``reconnect`` None ends it at the first drop, silence or failed
    attempt. ``compression``, ``max_size``, ``ping_interval`` and ``proxy`` go to ``websockets`` as they are.
    ``validate`` checks each message against its schema (``message_problems``); ``clock`` stamps events.
    """

    def __init__(
        self,
        base_url: str | Callable[[], Sequence[str]],
        batch_id: str,
        *,
        token: str | None = None,
        token_in_query: bool = False,
        cookie: str | None = None,
        origin: str | None = None,
        last_seq: int | None = None,
        open_timeout_s: float = 10.0,
        recv_timeout_s: float | None = None,
        deadline_s: float | None = None,
        reconnect: Reconnect | None = None,
        compression: str | None = "deflate",
        max_size: int | None = 2**20,
        ping_interval: float | None = 20.0,
        proxy: str | Literal[True] | None = True,
        validate: bool = True,
        clock: Callable[[], float] = time.monotonic,
        stop: threading.Event | None = None,
    ) -> None:
        self._urls = base_url if callable(base_url) else (lambda: [base_url])
        self.batch_id = batch_id
        self.token, self.token_in_query, self.cookie, self.origin = token, token_in_query, cookie, origin
        self.initial_last_seq = last_seq
        self.open_timeout_s, self.recv_timeout_s, self.deadline_s = open_timeout_s, recv_timeout_s, deadline_s
        self.reconnect = reconnect
        self._connect_options = {
            "compression": compression,
            "max_size": max_size,
            "ping_interval": ping_interval,
            "proxy": proxy,
        }
        self.validate = validate
        self.clock = clock
        self.stop_event = stop if stop is not None else threading.Event()
        self.coverage = SeqCoverage()
        self.connections = 0
        self.attempts = 0
        self._resume = threading.Event()
        self._resume.set()
        self._lock = threading.Lock()
        self._ws: ClientConnection | None = None

    # Control, from any thread (or from an event callback).

    def stop(self) -> None:
        """End the follow: close the current connection, wake any wait."""
        self.stop_event.set()
        self._resume.set()
        self.drop()

    def pause(self) -> None:
        """Close the current connection and stay away until ``resume()`` (events keep happening meanwhile)."""
        self._resume.clear()
        self.drop()

    def resume(self) -> None:
        self._resume.set()

    def drop(self) -> None:
        """Close the current connection, if any; the follow goes on as after any drop."""
        with self._lock:
            ws = self._ws
        if ws is not None:
            ws.close()

    # The loop.

    def url(self, base_url: str, last_seq: int | None) -> str:
        """The socket URL for one attempt on ``base_url``."""
        token = self.token if self.token_in_query else None
        return ws_url(base_url, self.batch_id, last_seq=last_seq, token=token)

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.token and not self.token_in_query:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.cookie:
            headers["Cookie"] = f"{SESSION_COOKIE}={self.cookie}"
        return headers

    def follow(self, on_event: Callable[[SocketEvent], None] = _ignore) -> Ending:
        """Connect, read, reconnect as ``reconnect`` allows; report each step to ``on_event``; say why it ended.

        Call it once per follower. ``on_event`` runs on this thread, between reads: it may call ``stop()``, and
        what it raises ends the follow (the connection closed) and reaches the caller.
        """
        deadline = None if self.deadline_s is None else self.clock() + self.deadline_s
        failing_since: float | None = None
        while True:
            if self.stop_event.is_set():
                return Ending(Why.STOPPED, "stopped")
            if not self._resume.is_set():
                self._resume.wait()  # stop() sets it too
                continue
            if deadline is not None and self.clock() >= deadline:
                return self._deadline()
            # Resume from the newest seq covered (a snapshot or heartbeat vouches for its own); at first, as asked.
            last_seq = self.coverage.covered if self.connections else self.initial_last_seq
            url = ""
            try:
                urls = list(self._urls())
                if not urls:
                    raise OSError("no URL to connect to")
                url = self.url(urls[self.attempts % len(urls)], last_seq)
                self.attempts += 1
                ws = connect(
                    url,
                    origin=self.origin,  # type: ignore[arg-type]
                    additional_headers=self.headers(),
                    open_timeout=self.open_timeout_s,
                    **self._connect_options,  # type: ignore[arg-type]
                )
            except InvalidStatus as exc:
                status = exc.response.status_code
                return Ending(Why.REFUSED, f"handshake refused: HTTP {status}", http_status=status, error=exc)
            # A server (re)starting can reset the connection at any step of the opening handshake: in connect()
            # (OSError), while the request is sent (websockets turns that into ConnectionClosed) or while the
            # response is awaited (InvalidHandshake). Each is a failed attempt, retried alike.
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                now = self.clock()
                log.debug("socket attempt on %s failed: %s", url, exc)
                on_event(AttemptFailed(url, exc, now))
                failing_since = now if failing_since is None else failing_since
                if self.reconnect is None:
                    return Ending(Why.UNREACHABLE, f"connect failed: {exc}", error=exc)
                budget = self.reconnect.budget_s
                if budget is not None and now - failing_since >= budget:
                    return Ending(Why.UNREACHABLE, f"could not connect for {budget:g} s: {exc}", error=exc)
                self.stop_event.wait(self.reconnect.interval_s)  # a retry interval, not a synchronisation
                continue
            failing_since = None
            closed = self._read(ws, url, last_seq, deadline, on_event)
            if closed.why in RETRIED and self.reconnect is not None:
                continue
            return self._ending(closed)

    def _read(
        self,
        ws: ClientConnection,
        url: str,
        last_seq: int | None,
        deadline: float | None,
        on_event: Callable[[SocketEvent], None],
    ) -> Closed:
        """Read one connection to its end and report it closed."""
        index = self.connections
        self.connections += 1
        self.coverage.connected(last_seq)
        code: int | None = None
        reason = ""
        with ws:  # websockets >= 17.1 wants every connection used as a context manager
            with self._lock:
                self._ws = ws
            try:
                on_event(Connected(index, url, last_seq, self.clock(), time.time()))
                while True:
                    if self.stop_event.is_set():
                        why = Why.STOPPED
                        break
                    if not self._resume.is_set():  # paused while this connection was opening
                        why = Why.DROPPED
                        break
                    timeout, limit = self.recv_timeout_s, Why.SILENCE
                    if deadline is not None:
                        remaining = deadline - self.clock()
                        if remaining <= 0:
                            why = Why.DEADLINE
                            break
                        if timeout is None or remaining < timeout:
                            timeout, limit = remaining, Why.DEADLINE
                    try:
                        raw = ws.recv(timeout=timeout)
                    except TimeoutError:
                        why = limit
                        break
                    except ConnectionClosed as exc:
                        code = exc.rcvd.code if exc.rcvd is not None else NO_CLOSE_FRAME
                        reason = exc.rcvd.reason if exc.rcvd is not None else ""
                        why = Why.STOPPED if self.stop_event.is_set() else _close_kind(code)
                        break
                    on_event(self._arrived(index, raw, self.clock(), time.time()))
            finally:
                with self._lock:
                    self._ws = None
        closed = Closed(index, code, reason, why, self.clock())
        on_event(closed)
        return closed

    def _arrived(self, connection: int, raw: str | bytes, at: float, wall: float) -> Arrived:
        try:
            parsed = json.loads(raw)
        except ValueError:
            message: dict[str, Any] = {"type": "<not JSON>", "raw": str(raw)[:200]}
            problems = ["not JSON"]
        else:
            if isinstance(parsed, dict):
                message = parsed
                problems = message_problems(message) if self.validate else []
            else:
                message, problems = {"type": "<not an object>", "raw": str(raw)[:200]}, ["not a JSON object"]
        seq, from_seq = message.get("seq"), message.get("from_seq")
        step = self.coverage.add(
            str(message.get("type")),
            seq if isinstance(seq, int) else None,
            from_seq if isinstance(from_seq, int) else None,
        )
        return Arrived(connection, message, tuple(problems), step, at, wall)

    def _deadline(self) -> Ending:
        return Ending(Why.DEADLINE, f"no end within {self.deadline_s:g} s")

    def _ending(self, closed: Closed) -> Ending:
        said = f"{closed.code} {closed.reason}".rstrip()
        match closed.why:
            case Why.DEADLINE:
                return self._deadline()
            case Why.SILENCE:
                detail = f"nothing for {self.recv_timeout_s:g} s"
            case Why.DROPPED:
                detail = f"dropped: {said}"
            case Why.REFUSED | Why.POLICY:
                detail = f"closed by the server: {said}"
            case _:
                detail = "stopped"
        return Ending(closed.why, detail, close_code=closed.code, close_reason=closed.reason)


def _close_kind(code: int) -> Why:
    if code in REFUSED_CLOSES:
        return Why.REFUSED
    if code in POLICY_CLOSES:
        return Why.POLICY
    return Why.DROPPED
