"""An idle keep-alive connection outlives the pauses of the kit's users: a client that reuses its pooled
connection after a pause must not meet a server that has just closed it (a reset POST is not retried)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from reference_backend.server import KEEP_ALIVE_S
from utilities.procs.backend import BackendProcess

PAUSE_S = 6.0  # longer than uvicorn's default keep-alive (5 s), as the soak profile's uploaders pause


def _get_healthz(connection: socket.socket, host: str) -> bytes:
    """One whole response (headers and its Content-Length body), so nothing is left unread on the socket."""
    connection.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def test_an_idle_connection_is_still_open_after_a_users_pause(backend: BackendProcess) -> None:
    assert backend.url is not None
    address = urlsplit(backend.url)
    host = f"{address.hostname}:{address.port}"
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        assert _get_healthz(connection, host).startswith(b"HTTP/1.1 200")
        # The pause is what is tested, not a wait for something to happen.
        connection.settimeout(PAUSE_S)
        try:
            closed = connection.recv(1) == b""
        except TimeoutError:
            closed = False
        connection.settimeout(10)
        assert not closed, f"the server closed an idle connection within {PAUSE_S} s"
        assert _get_healthz(connection, host).startswith(b"HTTP/1.1 200")
    assert KEEP_ALIVE_S > 60
