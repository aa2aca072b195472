"""uvicorn's WebSocket protocol plus one ASGI extension: write an already framed message to the socket.

A progress message is the same bytes on every socket of a batch (the server sends unmasked frames
and negotiates no extension), so ``fanout.py`` frames it once and writes those bytes to each
socket's transport: no per-socket JSON, framing, ASGI message or task switch. The extension is
offered in the scope as ``scope["extensions"][PREFRAMED]``; an app run by another server does not
find it and sends through plain ASGI instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

log = logging.getLogger(__name__)

PREFRAMED = "batchqa.websocket.preframed"
#: Bytes a client may leave unread before it is cut off (about a thousand progress messages).
MAX_UNREAD_BYTES = 256 * 1024


def text_frame(text: str) -> bytes:
    """One final, unmasked text frame: what a server sends for ``text`` when no extension is in use."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


@dataclass(frozen=True, slots=True)
class PreframedSocket:
    """What the extension hands the app: ``write`` (False once the socket cannot take more) and ``close``."""

    protocol: PreframedWebSocketProtocol

    def write(self, frame: bytes) -> bool:
        return self.protocol.write_frame(frame)

    def close(self, code: int, reason: str) -> None:
        self.protocol.close_from_app(code, reason)


class PreframedWebSocketProtocol(WebSocketsSansIOProtocol):
    """``WebSocketsSansIOProtocol`` that also lets the app write whole frames synchronously."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The ASGI task is scheduled, not yet running: the app sees the extension from its first step.
        scope = getattr(self, "scope", None)
        if scope is not None and not self.conn.extensions:
            scope["extensions"][PREFRAMED] = PreframedSocket(self)

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
