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
from utilities.client.progress_messages import seq_ranges, ws_url
from utilities.client.seq_coverage import SeqCoverage

log = logging.getLogger(__name__)


class SocketWatcher:
    """Stands in for the UI: follows a batch's progress socket, reconnecting with ``last_seq`` to any live API.

    Runs in a thread until a message carries a finished status. ``problems()`` lists what the contract's seq
    rules (``SeqCoverage``) found — a seq repeated or gone back, seqs no message covered, across reconnections —
    or no end.
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
        self.coverage = SeqCoverage()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{batch_id[:8]}", daemon=True)

    def start(self) -> SocketWatcher:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self._stop.set()

    def problems(self) -> list[str]:
        seqs = self.coverage.findings
        found = [f"seqs {seq_ranges(seqs.missing)} covered by no message"] if seqs.missing else []
        found += [f"advancing seq {seq_ranges(seqs.duplicates)} came twice"] if seqs.duplicates else []
        found += [f"seq went back to {seq_ranges(seqs.backwards)}"] if seqs.backwards else []
        if self.terminal is None:
            found.append(f"the socket never showed batch {self.batch_id[:8]} finish ({self.connections} connections)")
        return found

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            urls = self.urls()
            if not urls:
                time.sleep(0.1)
                continue
            last_seq = self.coverage.covered
            url = ws_url(urls[self.connections % len(urls)], self.batch_id, last_seq=last_seq, token=self.token)
            try:
                with connect(url, open_timeout=5, proxy=None) as ws:
                    self.connections += 1
                    self.coverage.connected(last_seq)
                    while not self._stop.is_set():
                        message = json.loads(ws.recv(timeout=5))  # heartbeats come every second
                        self.messages.append(message)
                        self.coverage.add(message["type"], message.get("seq"), message.get("from_seq"))
                        if message.get("status") in TERMINAL_STATUSES:
                            self.terminal = message
                            return
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException):
                self.disconnects += 1
                time.sleep(0.2)  # before reconnecting: a killed API process needs a moment to be replaced
