"""The progress WebSocket ``/api/v1/batch/ws/{batch_id}`` (docs/contract.md, "Progress WebSocket").

The route admits a socket, reads its opening and hands it to the batch's feed (``fanout.py``), which
does all the sending. Under the bundled server (``ws_protocol.py``) the route then detaches the
socket and returns: the protocol passes what the client sends to ``DetachedInbound``, so a held
socket keeps no task. Under another server the socket's own task reads what the client sends.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from fastapi.concurrency import run_in_threadpool

from .. import faults
from ..app_state import AppState, token_from
from ..batches import get_owned_batch, status_view
from ..database import Store
from ..errors import NotFound, Unauthorized
from ..fanout import BatchFeed, FeedRegistry, Subscriber
from ..progress_stream import covered_seq, event_message, opening_messages, stored_events_after
from ..security import SESSION_COOKIE
from ..ws_protocol import PREFRAMED, PreframedSocket

log = logging.getLogger(__name__)

router = APIRouter(tags=["sockets"])

# Refusals: accepted, then closed with one of these, so a browser's onclose sees why (a handshake
# answered 403 reaches page scripts only as code 1006).
NOT_AUTHENTICATED = 4401
ORIGIN_NOT_ALLOWED = 4403
BATCH_NOT_FOUND = 4404
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Refused(Exception):
    """Why a socket is closed by the server: the close code and a short reason for the client."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def normalise_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port; None when it is not an origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def origin_allowed(origin: str | None, *, own: Iterable[str], allowed: Iterable[str]) -> bool:
    """No Origin (not a browser), the server's own origin, or one configured in ``allowed_origins``."""
    if origin is None:
        return True
    candidate = normalise_origin(origin)
    if candidate is None:
        return False
    accepted = {normalise_origin(o) for o in (*own, *allowed)}
    return candidate in accepted


class InboundGuard:
    """What a client may send: small messages (else 1009) at a modest rate (else 1008).

    Every held socket has one, and most clients send nothing: the record of recent messages is made
    on the first one.
    """

    __slots__ = ("_recent", "max_bytes", "max_per_second")

    def __init__(self, *, max_bytes: int, max_per_second: float) -> None:
        self.max_bytes = max_bytes
        self.max_per_second = max_per_second
        self._recent: deque[float] | None = None

    def check(self, size: int, now: float) -> Refused | None:
        if size > self.max_bytes:
            return Refused(MESSAGE_TOO_BIG, f"messages are limited to {self.max_bytes} bytes")
        if self._recent is None:
            self._recent = deque()
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) > math.floor(self.max_per_second):
            return Refused(POLICY_VIOLATION, f"more than {self.max_per_second:g} messages a second")
        return None


def _own_origins(websocket: WebSocket, state: AppState) -> list[str]:
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    own = [f"{scheme}://{host}" for host in [websocket.headers.get("host")] if host]
    if state.settings.public_url:
        own.append(state.settings.public_url)
    return own


def admit_socket(websocket: WebSocket, state: AppState) -> tuple[int, int | None]:
    """The user and the requested ``last_seq``, or ``Refused``: origin first, then credentials."""
    origin = websocket.headers.get("origin")
    allowed = faults.on("origin_check_off") or origin_allowed(
        origin, own=_own_origins(websocket, state), allowed=state.settings.allowed_origins
    )
    if not allowed:
        raise Refused(ORIGIN_NOT_ALLOWED, "origin not allowed")
    try:
        token = token_from(websocket.headers.get("authorization"), None)
        token = token or websocket.query_params.get("token") or websocket.cookies.get(SESSION_COOKIE)
        if not token:
            raise Refused(NOT_AUTHENTICATED, "not authenticated")
        user_id = state.signer.user_id(token)
    except Unauthorized as exc:
        raise Refused(NOT_AUTHENTICATED, exc.code) from exc
    raw = websocket.query_params.get("last_seq")
    if raw is None or raw == "":
        return user_id, None
    if not raw.isdigit():
        raise Refused(POLICY_VIOLATION, "last_seq must be a non-negative integer")
    return user_id, int(raw)


def _opening(store: Store, batch_id: str, user_id: int, last_seq: int | None) -> tuple[dict[str, Any], list[Any]]:
    """The batch's status view and, for a resumed connection, its stored events after ``last_seq``."""
    with store.read() as session:  # one read transaction: the view and the events agree
        view = status_view(get_owned_batch(session, batch_id, user_id))
        stored = [] if last_seq is None else stored_events_after(session, batch_id, last_seq)
        stored = stored[1:] if faults.on("replay_skips_event") else stored
    return view, stored


def _events_between(store: Store, batch_id: str, after_seq: int, up_to: int) -> list[dict[str, Any]]:
    with store.read() as session:
        return [e for e in stored_events_after(session, batch_id, after_seq) if e["seq"] <= up_to]


def feeds_of(websocket: WebSocket, state: AppState) -> FeedRegistry:
    """The app's batch feeds, made on its first progress socket."""
    app_state = websocket.app.state
    registry = getattr(app_state, "batchqa_feeds", None)
    if registry is None:
        settings = state.settings
        registry = FeedRegistry(
            bus=state.bus,
            store=state.store,
            coalesce_s=settings.ws_coalesce_ms / 1000,
            heartbeat_s=settings.heartbeat_seconds,
            on_sent=state.metrics.message_sent,
        )
        app_state.batchqa_feeds = registry
        state.metrics.watch_sockets(registry.socket_count)  # one bus subscription serves a batch's sockets
    return registry


@router.websocket("/api/v1/batch/ws/{batch_id}")
async def progress_socket(websocket: WebSocket, batch_id: str) -> None:
    state: AppState = websocket.app.state.batchqa
    await websocket.accept()
    try:
        user_id, last_seq = admit_socket(websocket, state)
    except Refused as refusal:
        log.info("progress socket for %s refused: %d %s", batch_id, refusal.code, refusal.reason)
        await websocket.close(refusal.code, refusal.reason)
        return
    feed = feeds_of(websocket, state).feed(batch_id)
    subscriber = feed.join(websocket)  # before reading storage, so no event falls in between
    close: Refused | None = None
    detached = False
    try:
        try:
            view, stored = await run_in_threadpool(_opening, state.store, batch_id, user_id, last_seq)
        except NotFound:
            # Another user's batch gets exactly this too: a socket must not reveal which ids exist.
            close = Refused(BATCH_NOT_FOUND, "batch not found")
        else:
            opening = opening_messages(view, last_seq=last_seq, stored=stored)
            covered = covered_seq(opening, last_seq)
            if (owed := feed.owed(subscriber, covered)) is not None:
                more = await run_in_threadpool(_events_between, state.store, batch_id, covered, owed)
                opening += [event_message(e) for e in more]
                covered = covered_seq(opening, last_seq)
            feed.admit(subscriber, view, opening, covered)
            del view, stored, opening  # a long replay must not stay in memory for the socket's whole life
            settings = state.settings
            guard = InboundGuard(
                max_bytes=settings.ws_max_message_bytes, max_per_second=settings.ws_max_messages_per_second
            )
            preframed: PreframedSocket | None = (websocket.scope.get("extensions") or {}).get(PREFRAMED)
            if preframed is not None:
                # The feed does the sending and the protocol passes on what the client sends: this
                # task, and what it holds, is not needed while the socket is open. Not detached: the
                # client is gone already, and the feed is left below.
                inbound = DetachedInbound(feed, subscriber, guard, preframed.close)
                detached = preframed.detach(inbound.message, inbound.closed)
                return
            close = await _receive_loop(websocket, guard)
    finally:
        if not detached:
            feed.leave(subscriber)
    if close is not None:
        with contextlib.suppress(Exception):  # the client may be gone already
            await websocket.close(close.code, close.reason)


class DetachedInbound:
    """What a detached socket's client sends, checked by its guard; the socket leaves its feed once."""

    __slots__ = ("_close", "feed", "guard", "subscriber")

    def __init__(
        self, feed: BatchFeed, subscriber: Subscriber, guard: InboundGuard, close: Callable[[int, str], None]
    ) -> None:
        self.feed = feed
        self.subscriber: Subscriber | None = subscriber
        self.guard = guard
        self._close = close

    def message(self, size: int) -> None:
        """One message of ``size`` bytes from the client: ignored, unless it breaks a limit (then closed)."""
        if self.subscriber is None:
            return
        if (violation := self.guard.check(size, time.monotonic())) is not None:
            self.closed()
            self._close(violation.code, violation.reason)

    def closed(self) -> None:
        """The connection is gone (or being closed): leave the feed, once."""
        subscriber, self.subscriber = self.subscriber, None
        if subscriber is not None:
            self.feed.leave(subscriber)


async def _receive_loop(websocket: WebSocket, guard: InboundGuard) -> Refused | None:
    """Read (and ignore) what the client sends; the first limit it breaks ends the socket."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        text, data = message.get("text"), message.get("bytes")
        size = len(text.encode("utf-8")) if text is not None else len(data or b"")
        if (violation := guard.check(size, time.monotonic())) is not None:
            return violation
