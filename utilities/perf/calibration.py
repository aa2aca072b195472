"""A short fixed workload that measures how fast this machine is right now, so latencies can be compared
across machines: CPU (hashing and JSON, what a request handler does), SQLite writes with commits (what the
store does) and loopback HTTP round trips (what every request pays)."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROUNDS = 20  # each part runs ROUNDS times; the fastest round counts (other processes only ever add time)
CPU_ITERATIONS = 1000
SQLITE_COMMITS = 50
HTTP_REQUESTS = 50
PARTS = ("cpu_ms", "sqlite_ms", "http_ms")


@dataclass(frozen=True)
class Calibration:
    """The fastest round of each part, in ms; ``score_ms`` is their geometric mean (one number per machine)."""

    cpu_ms: float
    sqlite_ms: float
    http_ms: float

    @property
    def score_ms(self) -> float:
        return statistics.geometric_mean([self.cpu_ms, self.sqlite_ms, self.http_ms])

    @classmethod
    def fastest(cls, *probes: Calibration) -> Calibration:
        """Each part's fastest over several probes."""
        return cls(**{part: min(getattr(p, part) for p in probes) for part in PARTS})

    def as_dict(self) -> dict[str, float]:
        return {**{k: round(v, 3) for k, v in asdict(self).items()}, "score_ms": round(self.score_ms, 3)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        missing = [part for part in PARTS if part not in data]
        if missing:
            raise ValueError(f"calibration lacks {missing}")
        return cls(**{part: float(data[part]) for part in PARTS})


def speed_factor(run: Calibration | None, baseline: Calibration | None) -> float:
    """How much slower this machine is than the baseline's (2.0 = everything takes twice as long): the
    median of the three parts' ratios, so one part disturbed by a neighbour (the disk is shared) does not
    move it; 1.0 when either probe is missing."""
    if run is None or baseline is None:
        return 1.0
    ratios = [getattr(run, part) / getattr(baseline, part) for part in PARTS if getattr(baseline, part) > 0]
    return statistics.median(ratios) if ratios else 1.0


def _cpu() -> None:
    payload = {"prompt": "x" * 200, "row": 0, "meta": {"a": [1, 2, 3]}}
    for i in range(CPU_ITERATIONS):
        payload["row"] = i
        hashlib.sha256(json.dumps(payload).encode()).hexdigest()


def _sqlite(path: Path) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # as the backend's store
        connection.execute("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, body TEXT)")
        for i in range(SQLITE_COMMITS):
            connection.execute("INSERT INTO rows (body) VALUES (?)", (f"row {i} " * 8,))
            connection.commit()
        connection.execute("DELETE FROM rows")
        connection.commit()
    finally:
        connection.close()


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the second waits for a delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _http(port: int) -> None:
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(HTTP_REQUESTS):
            connection.request("GET", "/")
            connection.getresponse().read()
    finally:
        connection.close()


def _fastest(part: Callable[[], None]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        part()
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def probe() -> Calibration:
    """Run the three parts (about a second on an idle 2-core machine) and return their fastest rounds."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, name="calibration-http", daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory(prefix="batchqa-calibration-") as scratch:
            result = Calibration(
                cpu_ms=_fastest(_cpu),
                sqlite_ms=_fastest(lambda: _sqlite(Path(tempfile.mkdtemp(dir=scratch)) / "probe.db")),
                http_ms=_fastest(lambda: _http(server.server_address[1])),
            )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    log.info("calibration: %s", result.as_dict())
    return result
