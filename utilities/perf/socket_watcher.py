"""``SocketWatcher``: stands in for the UI on a batch's progress socket while processes die around it, reconnecting
with ``last_seq`` to any live API process."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import websockets
from websockets.sync.client import connect

from utilities.client.api import TERMINAL_STATUSES
from utilities.client.progress_messages import ws_url

log = logging.getLogger(__name__)

ADVANCING = frozenset({"progress", "status", "completed", "error"})


class SocketWatcher:
    """Stands in for the UI: follows a batch's progress socket, reconnecting with ``last_seq`` to any live API.

    Runs in a thread until a message carries a finished status. ``problems()`` lists a seq that went
    backwards, seqs that no message covered (each message covers ``from_seq``..``seq``; the ranges
    must join across reconnections, so a resumed connection's replay must start right after
    ``last_seq``), or no end.
    """

    def __init__(self, batch_id: str, token: str, urls: Callable[[], list[str]], *, timeout: float = 180.0) -> None:
        self.batch_id = batch_id
        self.token = token
        self.urls = urls
        self.timeout = timeout
        self.messages: list[dict] = []  # type: ignore[type-arg]
        self.connections = 0
        self.disconnects = 0
        self.terminal: dict | None = None  # type: ignore[type-arg]
        self.found: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{batch_id[:8]}", daemon=True)

    def start(self) -> SocketWatcher:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self._stop.set()

    def problems(self) -> list[str]:
        found = list(self.found)
        if self.terminal is None:
            found.append(f"the socket never showed batch {self.batch_id[:8]} finish ({self.connections} connections)")
        return found

    def _run(self) -> None:
        last_seq: int | None = None
        deadline = time.monotonic() + self.timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            urls = self.urls()
            if not urls:
                time.sleep(0.1)
                continue
            url = ws_url(urls[self.connections % len(urls)], self.batch_id, last_seq=last_seq, token=self.token)
            try:
                with connect(url, open_timeout=5, proxy=None) as ws:
                    self.connections += 1
                    resumed_from = last_seq
                    while not self._stop.is_set():
                        message = json.loads(ws.recv(timeout=5))  # heartbeats come every second
                        self.messages.append(message)
                        seq, from_seq = message["seq"], message.get("from_seq", message["seq"])
                        if message["type"] in ADVANCING:
                            if last_seq is not None and seq <= last_seq:
                                self.found.append(f"seq went from {last_seq} to {seq}")
                            elif last_seq is not None and from_seq > last_seq + 1:
                                where = "the replay after a reconnection" if resumed_from is not None else "live"
                                self.found.append(
                                    f"seqs {last_seq + 1}..{from_seq - 1} covered by no message ({where}, "
                                    f"next covered {from_seq}..{seq})"
                                )
                            last_seq, resumed_from = seq, None
                        elif message["type"] == "snapshot":
                            if resumed_from is not None and seq > resumed_from:
                                self.found.append(f"resumed after seq {resumed_from} but got a snapshot at {seq}")
                            last_seq, resumed_from = seq, None
                        elif last_seq is not None and seq > last_seq:
                            self.found.append(f"a heartbeat at seq {seq} after seqs covered only up to {last_seq}")
                        if message.get("status") in TERMINAL_STATUSES:
                            self.terminal = message
                            return
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException):
                self.disconnects += 1
                time.sleep(0.2)
