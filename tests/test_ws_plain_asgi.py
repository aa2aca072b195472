"""The progress socket under a server without the pre-framed extension: the route keeps its task and sends through
plain ASGI, with the same messages, limits and cleanup."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reference_backend.routes.sockets import MESSAGE_TOO_BIG
from utilities.client.api import BatchApi
from utilities.client.socket_probe import probe_socket

from .test_ws_memory import served_in_process

pytestmark = pytest.mark.area("Progress WebSocket")


def test_without_the_extension_the_socket_is_served_through_plain_asgi(tmp_path: Path) -> None:
    with served_in_process(tmp_path, heartbeat_seconds=1.0, ws="websockets-sansio") as (url, app):
        with BatchApi.new_user(url, "plain-asgi") as api:
            batch_id = api.upload(text="one\ntwo")["batch_id"]
            api.wait_until(batch_id)
            bearer = {"Authorization": f"Bearer {api.token}"}
            ping = ['{"type":"ping"}']
            outcome = probe_socket(url, batch_id, headers=bearer, send=ping, until_messages=2, timeout=15)
            assert outcome.close_code is None, outcome
            assert [m["type"] for m in outcome.messages] == ["snapshot", "heartbeat"]
            too_big = probe_socket(url, batch_id, headers=bearer, send=["x" * 4097], timeout=15)
            assert too_big.close_code == MESSAGE_TOO_BIG, too_big
        feeds = app.state.batchqa_feeds
        deadline = time.monotonic() + 30
        while feeds.feeds:
            assert time.monotonic() < deadline, f"{feeds.socket_count()} sockets still in a feed"
            time.sleep(0.02)  # the poll interval of this wait, not a synchronisation
