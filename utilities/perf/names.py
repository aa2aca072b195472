"""Names of the custom entries the users put into Locust's stats, shared with ``utilities/perf/load.py``.

Socket timings and batch completions go through ``events.request`` so Locust aggregates them across
worker processes like any request. Entries in ``SAMPLES`` are measurements, not operations: they
never fail and are left out of the failure ratio and the request rate.
"""

from __future__ import annotations

import re

WS = "WS"
BATCH = "BATCH"

WS_CONNECT = "connect"  # handshake until the socket is open
WS_FIRST = "first message"  # connect start until the snapshot arrives
WS_LAG = "lag"  # arrival time - event_time of a progress/status/completed/error message
WS_GAP = "gap"  # time between two consecutive messages on one socket
WS_HELD = "held"  # how long one socket stayed open (sum / run time = sockets open on average)
WS_SILENCE = "silence"  # a failure: nothing arrived within --max-silence
WS_ORDER = "order"  # a failure: seq went backwards or an event repeated a seq
WS_MISSING = "missing"  # a failure: seqs no message covered (a hole between from_seq..seq ranges)

SAMPLES = frozenset({(WS, WS_LAG), (WS, WS_GAP), (WS, WS_HELD)})
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

_COMPLETE = re.compile(r"^complete (\d+)$")


def complete_name(size: int) -> str:
    """Upload request start until the terminal status is seen, for a batch of ``size`` prompts."""
    return f"complete {size}"


def completed_size(name: str) -> int | None:
    match = _COMPLETE.match(name)
    return int(match.group(1)) if match else None


def validate_name(fmt: str) -> str:
    """Downloading is timed as HTTP; this entry times checking the file and fails when it is wrong."""
    return f"validate {fmt}"


def is_operation(method: str, name: str) -> bool:
    """Requests, socket opens and batches count towards the failure ratio; samples do not."""
    return (method, name) not in SAMPLES
