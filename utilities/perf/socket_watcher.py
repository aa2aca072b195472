"""``SocketWatcher``: stands in for the UI on a batch's progress socket while processes die around it, reconnecting
with ``last_seq`` to any live API process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from utilities.client.api import TERMINAL_STATUSES
from utilities.client.progress_messages import seq_ranges
from utilities.client.socket_follower import (
    Arrived,
    AttemptFailed,
    Closed,
    Connected,
    Ending,
    Reconnect,
    SocketEvent,
    SocketFollower,
    Why,
)

RECONNECT_INTERVAL_S = 0.2  # after a failed attempt: a killed API process needs a moment to be replaced
SILENCE_S = 5.0  # heartbeats come every second: this long without one is a dead connection


class SocketWatcher:
    """Stands in for the UI: follows a batch's progress socket, reconnecting with ``last_seq`` to any live API.

    Runs in a thread until a message carries a finished status; each attempt takes the next of ``urls()`` (the
    API processes alive now). ``problems()`` lists what the contract's seq rules (``SeqCoverage``) found — a seq
    repeated or gone back, seqs no message covered, across reconnections — or no end.
    """

    def __init__(self, batch_id: str, token: str, urls: Callable[[], Sequence[str]], *, timeout: float = 180.0) -> None:
        self.batch_id = batch_id
        self.token = token
        self.urls = urls
        self.timeout = timeout
        self.messages: list[dict] = []  # type: ignore[type-arg]
        self.connections = 0
        self.disconnects = 0
        self.terminal: dict | None = None  # type: ignore[type-arg]
        self.ending: Ending | None = None
        self._stop = threading.Event()
        self._follower = SocketFollower(
            urls,
            batch_id,
            token=token,
            token_in_query=True,
            open_timeout_s=5,
            recv_timeout_s=SILENCE_S,
            deadline_s=timeout,
            reconnect=Reconnect(budget_s=None, interval_s=RECONNECT_INTERVAL_S),
            proxy=None,
            validate=False,
            stop=self._stop,
        )
        self.coverage = self._follower.coverage
        self._thread = threading.Thread(target=self._run, name=f"watch-{batch_id[:8]}", daemon=True)

    def start(self) -> SocketWatcher:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self._follower.stop()

    def problems(self) -> list[str]:
        seqs = self.coverage.findings
        found = [f"seqs {seq_ranges(seqs.missing)} covered by no message"] if seqs.missing else []
        found += [f"advancing seq {seq_ranges(seqs.duplicates)} came twice"] if seqs.duplicates else []
        found += [f"seq went back to {seq_ranges(seqs.backwards)}"] if seqs.backwards else []
        if self.terminal is None:
            ended = f", {self.ending.detail}" if self.ending is not None else ""
            found.append(
                f"the socket never showed batch {self.batch_id[:8]} finish ({self.connections} connections{ended})"
            )
        return found

    def _run(self) -> None:
        self.ending = self._follower.follow(self._on_event)

    def _on_event(self, event: SocketEvent) -> None:
        match event:
            case Connected():
                self.connections += 1
            case AttemptFailed():
                self.disconnects += 1
            case Closed() if event.why is not Why.STOPPED:
                self.disconnects += 1
            case Arrived():
                self.messages.append(event.message)
                if event.message.get("status") in TERMINAL_STATUSES:
                    self.terminal = event.message
                    self._stop.set()
