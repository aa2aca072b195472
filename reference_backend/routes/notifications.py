"""In-app notifications, their delivery log, and the user's channel × event preferences."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, WebSocket
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter
from sqlalchemy import func, select, update
from starlette.websockets import WebSocketDisconnect

from ..app_state import AppState, CurrentUserId, State
from ..errors import InvalidContent, NotFound
from ..models import utcnow
from ..notifications.models import Notification, NotificationPrefs, OutboxEntry
from ..notifications.preferences import CHANNELS, EVENTS, load_preferences
from ..openapi import errors
from .sockets import MESSAGE_TOO_BIG, Refused, admit_socket

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


def _view(note: Notification) -> dict[str, Any]:
    return {
        "id": note.id,
        "batch_id": note.batch_id,
        "event": note.event,
        "title": note.title,
        "body": note.body,
        "push": note.push,
        "created_at": note.created_at.replace(tzinfo=None).isoformat() + "Z",  # stored as UTC
        "read": note.read_at is not None,
    }


@router.get("", responses=errors(401, 422))
def list_notifications(user_id: CurrentUserId, state: State, unread_only: bool = False) -> dict[str, Any]:
    with state.store.read() as session:
        query = select(Notification).where(Notification.user_id == user_id, Notification.in_app.is_(True))
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        notes = session.scalars(query.order_by(Notification.id.desc()).limit(100)).all()
        unread = session.scalar(
            select(func.count()).where(
                Notification.user_id == user_id, Notification.in_app.is_(True), Notification.read_at.is_(None)
            )
        )
    return {"notifications": [_view(n) for n in notes], "unread": unread or 0}


# Ids are 32-bit in every supported database; a larger one cannot exist and must not reach the query.
NotificationId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("/{notification_id}/read", responses=errors(401, 404, 422))
def mark_read(notification_id: NotificationId, user_id: CurrentUserId, state: State) -> dict[str, Any]:
    with state.store.write() as session:
        note = session.get(Notification, notification_id)
        if note is None or note.user_id != user_id:
            raise NotFound(f"Notification {notification_id} was not found.", code="notification_not_found")
        note.read_at = note.read_at or utcnow()
        return _view(note)


@router.post("/read-all", responses=errors(401))
def mark_all_read(user_id: CurrentUserId, state: State) -> dict[str, int]:
    with state.store.write() as session:
        result = session.execute(
            update(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            .values(read_at=utcnow())
        )
    return {"marked": result.rowcount}


@router.get("/deliveries", responses=errors(401, 422))
def deliveries(user_id: CurrentUserId, state: State, batch_id: str | None = None) -> dict[str, Any]:
    """The outbox as this user's deliveries: what was sent where, what is being retried and why."""
    with state.store.read() as session:
        query = select(OutboxEntry).where(OutboxEntry.user_id == user_id)
        if batch_id:
            query = query.where(OutboxEntry.batch_id == batch_id)
        entries = session.scalars(query.order_by(OutboxEntry.id)).all()
    return {
        "deliveries": [
            {
                "id": e.id,
                "channel": e.channel,
                "event": e.event,
                "batch_id": e.batch_id,
                "status": e.status,
                "attempts": e.attempts,
                "last_error": e.last_error,
            }
            for e in entries
        ]
    }


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"({_OCTET}\.){{3}}{_OCTET}|({_LABEL}\.)*[A-Za-z]([A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_PCHAR = r"[A-Za-z0-9._~!$&'()*+,;=:@-]"
# An http(s) URL the schema can state exactly: every string it matches is a valid URL, so what the
# OpenAPI document promises and what the server accepts agree.
WEBHOOK_URL_PATTERN = rf"^https?://({_HOST})(:{_PORT})?(/{_PCHAR}*)*(\?({_PCHAR}|[/?])*)?$"
_HTTP_URL = TypeAdapter(HttpUrl)
WebhookUrl = Annotated[
    str,
    Field(max_length=2000, pattern=WEBHOOK_URL_PATTERN),
    AfterValidator(lambda url: str(_HTTP_URL.validate_python(url))),
]
_CHANNELS_SCHEMA = {
    "type": "object",
    "properties": {channel: {"type": "array", "items": {"enum": list(EVENTS)}} for channel in CHANNELS},
    "additionalProperties": False,
}


class PreferencesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Unknown channels and events are refused below with the lists of known ones (422 invalid_preferences).
    channels: dict[str, list[str]] = Field(
        default_factory=dict, description="channel -> events on it", json_schema_extra=_CHANNELS_SCHEMA
    )
    webhook_url: WebhookUrl | None = None
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=200)


@router.get("/preferences", responses=errors(401))
def get_preferences(user_id: CurrentUserId, state: State) -> dict[str, Any]:
    with state.store.read() as session:
        return load_preferences(session, user_id).view()


@router.put("/preferences", responses=errors(400, 401, 422))
def put_preferences(body: PreferencesBody, user_id: CurrentUserId, state: State) -> dict[str, Any]:
    unknown_channels = sorted(set(body.channels) - set(CHANNELS))
    unknown_events = sorted({e for events in body.channels.values() for e in events} - set(EVENTS))
    if unknown_channels or unknown_events:
        raise InvalidContent(
            "Unknown channel or event in the preferences.",
            code="invalid_preferences",
            unknown_channels=unknown_channels,
            unknown_events=unknown_events,
            channels=list(CHANNELS),
            events=list(EVENTS),
        )
    given = body.model_fields_set  # a field left out keeps its stored value; an explicit null clears it
    with state.store.write() as session:
        current = load_preferences(session, user_id)
        matrix = {c: sorted(set(body.channels.get(c, current.matrix.get(c, [])))) for c in CHANNELS}
        row = session.get(NotificationPrefs, user_id) or NotificationPrefs(user_id=user_id)
        row.matrix = matrix
        url = (str(body.webhook_url) if body.webhook_url else None) if "webhook_url" in given else current.webhook_url
        row.webhook_url = url
        row.webhook_secret = body.webhook_secret if "webhook_secret" in given else current.webhook_secret
        session.merge(row)
        session.flush()
        return load_preferences(session, user_id).view()


def _unread(state: AppState, user_id: int) -> int:
    with state.store.read() as session:
        return (
            session.scalar(
                select(func.count()).where(
                    Notification.user_id == user_id, Notification.in_app.is_(True), Notification.read_at.is_(None)
                )
            )
            or 0
        )


@router.websocket("/ws")
async def notification_socket(websocket: WebSocket) -> None:
    """The user's own socket: new notifications as they are delivered, heartbeats in between."""
    state: AppState = websocket.app.state.batchqa
    await websocket.accept()
    try:
        user_id, _ = admit_socket(websocket, state)
    except Refused as refusal:
        await websocket.close(refusal.code, refusal.reason)
        return
    key = f"user:{user_id}"
    queue = state.bus.subscribe(key)
    receiver = asyncio.create_task(_drain_client(websocket, state.settings.ws_max_message_bytes))
    try:
        await websocket.send_json({"type": "hello", "unread": await run_in_threadpool(_unread, state, user_id)})
        while not receiver.done():
            try:  # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
                async with asyncio.timeout(state.settings.heartbeat_seconds):
                    message = await queue.get()
            except TimeoutError:
                message = {"type": "heartbeat"}
            await websocket.send_json(message)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client left while we were sending
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver
        state.bus.unsubscribe(key, queue)


async def _drain_client(websocket: WebSocket, max_bytes: int) -> None:
    """Read (and drop) what the client sends, so a disconnect is noticed; oversized messages close."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if len(message.get("text") or message.get("bytes") or b"") > max_bytes:
            await websocket.close(MESSAGE_TOO_BIG, f"messages are limited to {max_bytes} bytes")
            return
