"""What a held progress socket costs the server in memory, counted by tracemalloc: a figure that load does not move.

The bundled server runs in this process (a thread), the sockets are held by a child process, and
the Python memory the server allocated for the measured sockets, still live while they are held,
is divided by their number. A first group of sockets is held before counting starts, so one-off
growth (the batch's feed, the thread pool, database connections) is not counted. A held socket
costs 7–8 KiB counted this way (it was about 36 KiB while each one kept its ASGI task);
``ws-bench`` measures RSS, which adds the allocator's own overhead.
"""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from reference_backend.app import create_app
from reference_backend.config import Settings
from reference_backend.server import uvicorn_config
from utilities.client.api import BatchApi

pytestmark = pytest.mark.area("Progress WebSocket")

WARM_UP_SOCKETS = 40
MEASURED_SOCKETS = 200
#: Bytes per held socket: a little above the 6.8–7.4 KiB measured, far below the ~36 KiB of a socket with a task.
MAX_BYTES_PER_SOCKET = 9 * 1024

# Holds sockets in two groups: the first on start, the second on the first line read from stdin; it prints
# how many of each group are open (each read its opening message) and exits on the second line.
HOLDER = """
import asyncio, sys
from utilities.perf.ws_bench_socket import connect_all

async def main(url, batch_id, token, first, second):
    held = await connect_all(url, batch_id, token, range(first))
    print(sum(s.error is None for s in held), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    held += await connect_all(url, batch_id, token, range(first, first + second))
    print(sum(s.error is None for s in held[first:]), flush=True)
    await asyncio.to_thread(sys.stdin.readline)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
"""


@contextmanager
def served_in_process(
    data_dir: Path, *, heartbeat_seconds: float = 60.0, ws: str | None = None
) -> Iterator[tuple[str, FastAPI]]:
    """The bundled server (its uvicorn configuration) on a thread of this process.

    ``ws`` names another of uvicorn's WebSocket protocols instead of the bundled one (which offers
    the pre-framed extension): the app then runs as under any other ASGI server.
    """
    settings = Settings(data_dir=data_dir, heartbeat_seconds=heartbeat_seconds, log_level="WARNING")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    settings.port = sock.getsockname()[1]
    app = create_app(settings)
    config = uvicorn_config(app, settings)
    if ws is not None:
        config.ws = ws
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="in-process-backend")
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the in-process server did not start"
            time.sleep(0.02)  # the poll interval of this wait, not a synchronisation
        yield settings.base_url, app
    finally:
        server.should_exit = True
        thread.join(30)


def _traced_bytes(snapshot: tracemalloc.Snapshot) -> int:
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _snapshots_around(action: Callable[[], None]) -> tuple[tracemalloc.Snapshot, tracemalloc.Snapshot]:
    """tracemalloc snapshots before and after ``action`` (counting starts just before it)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        action()
        gc.collect()
        return before, tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()


def _hold_more(holder: subprocess.Popen[str]) -> None:
    """Ask the holder for its second group of sockets and wait until every one is open."""
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("more\n")
    holder.stdin.flush()
    assert int(holder.stdout.readline()) == MEASURED_SOCKETS


def test_a_held_progress_socket_costs_the_server_little_memory_and_leaves_its_feed_on_close(tmp_path: Path) -> None:
    with served_in_process(tmp_path) as (url, app), BatchApi.new_user(url, "ws-memory") as api:
        assert api.token is not None
        batch_id = api.upload(text="\n".join(f"memory topic {i}" for i in range(3)))["batch_id"]
        command = [sys.executable, "-c", HOLDER, url, batch_id, api.token]
        command += [str(WARM_UP_SOCKETS), str(MEASURED_SOCKETS)]
        with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
            assert holder.stdin is not None and holder.stdout is not None
            try:
                assert int(holder.stdout.readline()) == WARM_UP_SOCKETS
                before, after = _snapshots_around(lambda: _hold_more(holder))
                # Every socket is still held by the server (each read its opening, so it has been admitted).
                assert app.state.batchqa_feeds.socket_count() == WARM_UP_SOCKETS + MEASURED_SOCKETS
                holder.stdin.write("done\n")
                holder.stdin.flush()
                assert holder.wait(30) == 0
            finally:
                if holder.poll() is None:
                    holder.kill()
        # Detached sockets still leave their feed when the client goes, and the last one drops it.
        feeds = app.state.batchqa_feeds
        deadline = time.monotonic() + 30
        while feeds.socket_count() or feeds.feeds:
            assert time.monotonic() < deadline, f"{feeds.socket_count()} sockets still in a feed"
            time.sleep(0.02)  # the poll interval of this wait, not a synchronisation
    per_socket = (_traced_bytes(after) - _traced_bytes(before)) / MEASURED_SOCKETS
    assert per_socket < MAX_BYTES_PER_SOCKET, f"{per_socket / 1024:.1f} KiB per held socket"
