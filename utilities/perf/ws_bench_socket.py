"""The bench's own minimal progress-socket client: the WebSocket handshake, then frames parsed in the protocol
callback, no task per socket — so that at thousands of sockets the measured lag is the server's, not a client
library's. Every message's arrival time is stamped as it is parsed."""

from __future__ import annotations

import asyncio
import base64
import secrets
import struct
import time
from urllib.parse import urlsplit

from utilities.client.api import TERMINAL_STATUSES

CONNECT_CONCURRENCY = 100
TERMINAL_MARKERS = tuple(f'"status":"{status}"'.encode() for status in TERMINAL_STATUSES)


class BenchSocket(asyncio.Protocol):
    """A minimal WebSocket client: the handshake, then every frame parsed where it arrives.

    Each text message is kept as (monotonic, wall, payload) stamped when its bytes arrived; pings
    are answered (the server drops a socket that does not), everything else waits for the analysis.
    """

    def __init__(self, index: int, request: bytes) -> None:
        self.index = index
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.raw: list[tuple[float, float, bytes]] = []
        self.opened_at = 0.0
        self.opened_wall = 0.0
        self.error: str | None = None
        self.first = asyncio.get_running_loop().create_future()  # the first message (the snapshot)
        self.done = asyncio.get_running_loop().create_future()  # a terminal status, or the end
        self._buffer = bytearray()
        self._upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.error = self.error or f"closed early: {exc or 'by the server'}"
            self.done.set_result(None)
        if not self.first.done():
            self.first.set_result(None)

    def data_received(self, data: bytes) -> None:
        at, wall = time.monotonic(), time.time()
        self._buffer += data
        if not self._upgraded:
            head, sep, rest = bytes(self._buffer).partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
                self._fail(f"handshake answered {status_line}")
                return
            self._upgraded, self._buffer = True, bytearray(rest)
            self.opened_at, self.opened_wall = at, wall
        self._parse(at, wall)

    def _parse(self, at: float, wall: float) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            opcode, length, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, offset = struct.unpack_from("!H", buffer, 2)[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, offset = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < offset + length:
                return
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            if opcode == 0x1:
                self.raw.append((at, wall, payload))
                if not self.first.done():
                    self.first.set_result(None)
                elif not self.done.done() and any(marker in payload for marker in TERMINAL_MARKERS):
                    self.done.set_result(None)
            elif opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
                self._fail(f"closed by the server: {code} {payload[2:].decode(errors='replace')}".rstrip())

    def _send(self, opcode: int, payload: bytes) -> None:
        """A masked frame (clients must mask) of up to 125 bytes: pongs and the close."""
        assert self.transport is not None and len(payload) <= 125
        mask = secrets.token_bytes(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def _fail(self, reason: str) -> None:
        self.error = self.error or reason
        for future in (self.first, self.done):
            if not future.done():
                future.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send(0x8, struct.pack("!H", 1000))
            self.transport.close()


def _upgrade_request(url: str, batch_id: str, token: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    request = (
        f"GET /api/v1/batch/ws/{batch_id} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    return host, port, request.encode()


async def _open(url: str, batch_id: str, token: str, gate: asyncio.Semaphore, index: int) -> BenchSocket:
    """Connect and wait for the snapshot (``error`` says why not)."""
    host, port, request = _upgrade_request(url, batch_id, token)
    sock = BenchSocket(index, request)
    async with gate:
        try:
            await asyncio.wait_for(asyncio.get_running_loop().create_connection(lambda: sock, host, port), 60)
            await asyncio.wait_for(sock.first, 60)
        except (OSError, TimeoutError) as exc:
            sock.error = f"connect: {type(exc).__name__}: {exc}"
    return sock


async def connect_all(url: str, batch_id: str, token: str, indices: range) -> list[BenchSocket]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    return list(await asyncio.gather(*(_open(url, batch_id, token, gate, i) for i in indices)))
