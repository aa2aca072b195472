"""The progress WebSocket ``/api/v1/batch/ws/{batch_id}`` (issue 3; docs/contract.md, "Progress WebSocket")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from .. import faults
from ..batches import get_owned_batch, status_view
from ..errors import NotFound, Unauthorized
from ..progress_stream import MessageEncoder, ProgressStream, stored_events_after
from ..security import SESSION_COOKIE
from ..state import AppState, token_from
from ..store import Store

log = logging.getLogger(__name__)

router = APIRouter(tags=["sockets"])

# Refusals: accepted, then closed with one of these, so a browser's onclose sees why (a handshake
# answered 403 reaches page scripts only as code 1006).
NOT_AUTHENTICATED = 4401
ORIGIN_NOT_ALLOWED = 4403
BATCH_NOT_FOUND = 4404
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011

_DEFAULT_PORTS = {"http": 80, "https": 443}

# One per process: every socket on a batch shares the JSON of each event.
_encoder = MessageEncoder()


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
    """What a client may send: small messages (else 1009) at a modest rate (else 1008)."""

    def __init__(self, *, max_bytes: int, max_per_second: float) -> None:
        self.max_bytes = max_bytes
        self.max_per_second = max_per_second
        self._recent: deque[float] = deque()

    def check(self, size: int, now: float) -> Refused | None:
        if size > self.max_bytes:
            return Refused(MESSAGE_TOO_BIG, f"messages are limited to {self.max_bytes} bytes")
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


def _events_after(store: Store, batch_id: str, after_seq: int) -> list[dict[str, Any]]:
    with store.read() as session:
        return stored_events_after(session, batch_id, after_seq)


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
    queue = state.bus.subscribe(batch_id)  # before reading storage, so no event falls in between
    try:
        try:
            view, stored = await run_in_threadpool(_opening, state.store, batch_id, user_id, last_seq)
        except NotFound:
            # Another user's batch gets exactly this too: a socket must not reveal which ids exist.
            await websocket.close(BATCH_NOT_FOUND, "batch not found")
            return
        settings = state.settings
        stream = ProgressStream(coalesce_s=settings.ws_coalesce_ms / 1000, heartbeat_s=settings.heartbeat_seconds)
        guard = InboundGuard(
            max_bytes=settings.ws_max_message_bytes, max_per_second=settings.ws_max_messages_per_second
        )
        opening = stream.open(view, last_seq=last_seq, stored=stored, now=time.monotonic())
        del view, stored  # a long replay must not stay in memory for the socket's whole life
        await _serve(websocket, state, batch_id, stream, queue, opening, guard)
    finally:
        state.bus.unsubscribe(batch_id, queue)


async def _serve(
    websocket: WebSocket,
    state: AppState,
    batch_id: str,
    stream: ProgressStream,
    queue: asyncio.Queue[dict[str, Any]],
    opening: list[dict[str, Any]],
    guard: InboundGuard,
) -> None:
    """Send until the client leaves; close with the guard's code if the client breaks a limit."""
    sender = asyncio.create_task(_send_loop(websocket, state, batch_id, stream, queue, opening))
    receiver = asyncio.create_task(_receive_loop(websocket, guard))
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, receiver):
            task.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
    close: Refused | None = None
    if receiver in done and not receiver.cancelled() and receiver.exception() is None:
        close = receiver.result()
    elif sender in done and not sender.cancelled() and (error := sender.exception()) is not None:
        if isinstance(error, WebSocketDisconnect):
            return
        log.error("progress socket for %s failed", batch_id, exc_info=error)
        close = Refused(INTERNAL_ERROR, "server error")
    if close is not None:
        with contextlib.suppress(Exception):  # the client may be gone already
            await websocket.close(close.code, close.reason)


async def _send_loop(
    websocket: WebSocket,
    state: AppState,
    batch_id: str,
    stream: ProgressStream,
    queue: asyncio.Queue[dict[str, Any]],
    opening: list[dict[str, Any]],
) -> None:
    for message in opening:
        await websocket.send_text(_encoder.encode(message))
    opening.clear()  # the caller's reference too: a replay is sent once, then forgotten
    while True:
        events: list[dict[str, Any]] = []
        wait = stream.next_deadline() - time.monotonic()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    events.append(await queue.get())
        while not queue.empty():  # a backlog is coalesced in one pass
            events.append(queue.get_nowait())
        now = time.monotonic()
        out: list[dict[str, Any]] = []
        for event in events:
            if stream.needs_backfill(event):
                stored = await run_in_threadpool(_events_after, state.store, batch_id, stream.seq)
                out.extend(stream.replay(stored, now))
            else:
                out.extend(stream.offer(event, now))
        out.extend(stream.due(now))
        for message in out:
            await websocket.send_text(_encoder.encode(message))


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
