"""A detached socket on the bundled WebSocket protocol, over a fake transport: the app's task ends, the socket stays.

What the client sends reaches the app's callback (also what it sent before the app detached), and
the app hears of the close exactly once: at once when it closes the socket itself, otherwise when
the connection is lost.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.frames import Close, Frame, Opcode

from reference_backend.ws_protocol import PREFRAMED, PreframedWebSocketProtocol

pytestmark = pytest.mark.area("Progress WebSocket")

HANDSHAKE = (
    b"GET /socket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class FakeTransport(asyncio.Transport):
    """Keeps what the server writes; closing it is only recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


class DetachingApp:
    """Accepts, waits until told to, then detaches; records what the callbacks receive."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.sizes: list[int] = []
        self.closes = 0
        self.detached: bool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await self.go.wait()
        self.detached = scope["extensions"][PREFRAMED].detach(self.sizes.append, self.closed)

    def closed(self) -> None:
        self.closes += 1


def text(payload: bytes) -> bytes:
    return Frame(Opcode.TEXT, payload).serialize(mask=True)


async def open_socket(app: DetachingApp) -> tuple[PreframedWebSocketProtocol, FakeTransport]:
    config = Config(app=app, ws=PreframedWebSocketProtocol, ws_per_message_deflate=False, lifespan="off")
    config.load()
    state = ServerState()
    protocol = PreframedWebSocketProtocol(config, state, app_state={}, _loop=asyncio.get_running_loop())
    transport = FakeTransport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
    for _ in range(20):  # the task's steps up to the accept, one loop iteration each
        if protocol.handshake_complete:
            break
        await asyncio.sleep(0)
    assert protocol.handshake_complete and transport.written.startswith(b"HTTP/1.1 101")
    return protocol, transport


async def finish(protocol: PreframedWebSocketProtocol) -> None:
    """Let the app detach and its task end."""
    await asyncio.gather(*protocol.tasks)


def test_the_task_ends_the_socket_stays_and_every_client_message_reaches_the_callback() -> None:
    async def scenario() -> None:
        app = DetachingApp()
        protocol, transport = await open_socket(app)
        protocol.data_received(text(b"sent before the detach"))  # queued for the app's receive()
        assert not transport.reading  # uvicorn stops reading until the app receives
        app.go.set()
        await finish(protocol)
        assert app.detached is True
        assert not transport.closed and transport.reading
        assert not hasattr(protocol, "scope")  # what the task held is not kept by the protocol
        protocol.data_received(text(b"after") + text(b"and more"))
        assert app.sizes == [len(b"sent before the detach"), len(b"after"), len(b"and more")]
        assert app.closes == 0
        protocol.connection_lost(None)
        assert app.closes == 1

    asyncio.run(scenario())


def test_closing_a_detached_socket_reports_the_close_at_once_and_only_once() -> None:
    async def scenario() -> None:
        app = DetachingApp()
        protocol, transport = await open_socket(app)
        app.go.set()
        await finish(protocol)
        before = len(transport.written)
        protocol.close_from_app(1013, "too slow")
        assert app.closes == 1  # not when the client answers the close, which may be never
        frame = bytes(transport.written[before:])
        assert frame[0] == 0x88 and struct.unpack("!H", frame[2:4])[0] == 1013
        protocol.data_received(text(b"after the close"))
        assert app.sizes == []
        protocol.connection_lost(None)
        assert app.closes == 1
        assert protocol.close_timer is None  # the loss of the connection ended the close's wait

    asyncio.run(scenario())


def test_a_client_that_closed_before_the_detach_is_not_detached() -> None:
    async def scenario() -> None:
        app = DetachingApp()
        protocol, transport = await open_socket(app)
        protocol.data_received(Frame(Opcode.CLOSE, Close(1000, "bye").serialize()).serialize(mask=True))
        app.go.set()
        await finish(protocol)
        assert app.detached is False
        assert transport.closed and app.closes == 0

    asyncio.run(scenario())
