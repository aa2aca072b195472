"""uvicorn's WebSocket protocol plus one ASGI extension: write framed messages, and let the app return.

A progress message is the same bytes on every socket of a batch (the server sends unmasked frames
and negotiates no extension), so ``fanout.py`` frames it once and writes those bytes to each
socket's transport: no per-socket JSON, framing, ASGI message or task switch. The extension is
offered in the scope as ``scope["extensions"][PREFRAMED]``; an app run by another server does not
find it and sends through plain ASGI instead.

The extension also lets the app *detach* a socket it only writes to: what the client sends is then
handed to a callback as it is parsed, the end of the connection to another, and the app's task
returns while the connection stays open. A held socket is then this protocol object, its websockets
state machine and its transport: the ASGI task with its chain of middleware and router frames,
Starlette's ``WebSocket``, the scope and the ASGI receive queue are freed (about 25 KiB a socket).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.protocol import State

log = logging.getLogger(__name__)

PREFRAMED = "batchqa.websocket.preframed"
#: Bytes a client may leave unread before it is cut off (about a thousand progress messages).
MAX_UNREAD_BYTES = 256 * 1024

#: Called with the size in bytes of each message the client sends to a detached socket.
OnMessage = Callable[[int], None]
#: Called once when a detached socket's connection is gone.
OnClosed = Callable[[], None]


def text_frame(text: str) -> bytes:
    """One final, unmasked text frame: what a server sends for ``text`` when no extension is in use."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


@dataclass(frozen=True, slots=True)
class PreframedSocket:
    """What the extension hands the app: ``write`` (False once the socket cannot take more), ``close``, ``detach``."""

    protocol: PreframedWebSocketProtocol

    def write(self, frame: bytes) -> bool:
        return self.protocol.write_frame(frame)

    def close(self, code: int, reason: str) -> None:
        self.protocol.close_from_app(code, reason)

    def detach(self, on_message: OnMessage, on_closed: OnClosed) -> bool:
        """Go on without the app's task: see ``PreframedWebSocketProtocol.detach``."""
        return self.protocol.detach(on_message, on_closed)


class _Discarded:
    """Stands in for the ASGI receive queue of a detached socket: nobody reads it any more."""

    __slots__ = ()

    def put_nowait(self, _message: object) -> None:
        return None

    def empty(self) -> bool:
        return True


class _NeverWaits:
    """Stands in for the ``writable`` event of a detached socket: nobody sends through ASGI any more."""

    __slots__ = ()

    def set(self) -> None:
        return None

    def clear(self) -> None:
        return None

    def is_set(self) -> bool:
        return True

    async def wait(self) -> bool:
        return True


# One of each for every detached socket: they hold no state.
_DISCARDED: Any = _Discarded()
_NEVER_WAITS: Any = _NeverWaits()
# The headers of every handshake request once the connection is open (nothing adds to them).
_NO_HEADERS = Headers()


class PreframedWebSocketProtocol(WebSocketsSansIOProtocol):
    """``WebSocketsSansIOProtocol`` that lets the app write whole frames synchronously and detach its task."""

    # Class defaults, so a socket that is never detached carries no extra attributes.
    _detached = False
    _on_message: OnMessage | None = None
    _on_closed: OnClosed | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The ASGI task is scheduled, not yet running: the app sees the extension from its first step.
        scope = getattr(self, "scope", None)
        if scope is not None and not self.conn.extensions:
            scope["extensions"][PREFRAMED] = PreframedSocket(self)

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            self._release_handshake()

    def _release_handshake(self) -> None:
        """Let go of the handshake's request and response: the scope has its own copy, and nothing reads them.

        The websockets parser keeps the request as a local for the connection's life, so its headers
        are swapped for a shared empty set.
        """
        request = getattr(self, "request", None)
        if request is not None:
            request.headers = _NO_HEADERS
        self.response = None  # type: ignore[assignment]

    def write_frame(self, frame: bytes) -> bool:
        """Write ``frame`` now; False if the socket is closing, gone, or has ``MAX_UNREAD_BYTES`` unread."""
        if self.close_sent or self.disconnected or self.conn.state is not State.OPEN or self.transport.is_closing():
            return False
        if self.transport.get_write_buffer_size() > MAX_UNREAD_BYTES:
            return False
        self.transport.write(frame)
        return True

    def close_from_app(self, code: int, reason: str) -> None:
        """Close as an ASGI ``websocket.close`` would, from outside the app's task (which then sees a disconnect)."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
        # An attached app sees the disconnect at once; a detached one is told at once too, not when
        # the client answers the close (a client too slow to read may take the whole close timeout).
        self._report_closed()

    def detach(self, on_message: OnMessage, on_closed: OnClosed) -> bool:
        """Keep the connection open after the app's task returns; False if it is gone already.

        From now on each message the client sends is passed to ``on_message`` (its size) as it is
        parsed, and ``on_closed`` is called once, when the connection is lost or the app closes it
        (``close_from_app``). Messages the app had not read yet are passed on first. The app must
        not receive or send through ASGI any more (writes and closes go through the extension) and
        should return.
        """
        if self.disconnected or not self.handshake_complete or self._detached:
            return False
        queued: list[dict[str, Any]] = []
        while not self.queue.empty():
            queued.append(self.queue.get_nowait())
        if any(m["type"] == "websocket.disconnect" for m in queued) and not self.close_sent:
            return False  # the client closed: the app sees it from the return value, as from receive()
        self._detached, self._on_message, self._on_closed = True, on_message, on_closed
        self.queue, self.writable = _DISCARDED, _NEVER_WAITS
        self._release_handshake()
        if hasattr(self, "scope"):
            del self.scope  # the app's task holds it until it returns; nothing else reads it
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        for message in queued:
            if message["type"] == "websocket.receive":
                on_message(_size(message))
        return True

    def send_receive_event_to_app(self) -> None:
        if not self._detached:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        on_message = self._on_message
        if self.close_sent or on_message is None:
            return  # as uvicorn does: past the close, messages are discarded until the peer's reply
        if self.curr_msg_data_type == "text":
            try:
                data.decode()
            except UnicodeDecodeError:  # as uvicorn does for an attached socket
                self.logger.exception("Invalid UTF-8 sequence received from client.")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        on_message(len(data))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._report_closed()

    def _report_closed(self) -> None:
        """Tell a detached socket's app that it is closed, once; nothing it sends is passed on after that."""
        on_closed = self._on_closed
        if on_closed is not None:
            self._on_message = self._on_closed = None
            on_closed()

    async def run_asgi(self) -> None:
        """uvicorn's ``run_asgi``, except that a detached socket stays open when the app returns."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and not self._detached:
            self.transport.close()


def _size(message: dict[str, Any]) -> int:
    text, data = message.get("text"), message.get("bytes")
    return len(text.encode("utf-8")) if text is not None else len(data or b"")
