"""An idle keep-alive connection outlives the pauses of the kit's users: a client that reuses its pooled
connection after a pause must not meet a server that has just closed it (a reset POST is not retried)."""

from __future__ import annotations

import socket
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest

from reference_backend.server import KEEP_ALIVE_S
from utilities.procs.backend import BackendProcess

pytestmark = pytest.mark.area("API")

PAUSE_S = 6.0  # longer than uvicorn's default keep-alive (5 s), as the soak profile's uploaders pause


def _healthz_status(connection: HTTPConnection) -> int:
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()  # the whole body, so nothing is left on the socket for the idle check to read
    return response.status


def test_an_idle_connection_is_still_open_after_a_users_pause(backend: BackendProcess) -> None:
    assert backend.url is not None
    address = urlsplit(backend.url)
    connection = HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
    try:
        assert _healthz_status(connection) == 200
        assert connection.sock is not None
        # The pause is what is tested, not a wait for something to happen: a server that closes the idle
        # connection within it makes recv return b"" (end of stream) before the timeout.
        connection.sock.settimeout(PAUSE_S)
        try:
            closed = connection.sock.recv(1, socket.MSG_PEEK) == b""
        except TimeoutError:
            closed = False
        connection.sock.settimeout(10)
        assert not closed, f"the server closed an idle connection within {PAUSE_S} s"
        assert _healthz_status(connection) == 200
    finally:
        connection.close()
    assert KEEP_ALIVE_S > 60
