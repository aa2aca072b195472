"""A probe that runs *during* the load, beside Locust: every ``interval_s`` a fixed reference request to the
target (``GET /healthz``: the server's event loop, thread pool and a database read, not under ``/api/``, so the
``slow_requests`` fault does not delay it) and a small CPU workload in this process. Each sample goes to
``probe.csv`` with its wall-clock time, so the gate can set each request beside what the reference and the
machine did at the same moment.

The calibration probe (``calibration.py``) runs before and after the load and keeps the fastest round: the
machine's speed at rest. This one measures the conditions the requests actually met.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PROBE_FILE = "probe.csv"
REFERENCE = "reference"  # the ``part`` of a reference request's row
CPU = "cpu"
INTERVAL_S = 0.25
CPU_ITERATIONS = 100
COLUMNS = ("t", "part", "ms", "ok")


def cpu_work(iterations: int = CPU_ITERATIONS) -> None:
    """JSON and SHA-256, what a request handler does (a tenth of the calibration probe's CPU part)."""
    payload = {"prompt": "x" * 200, "row": 0, "meta": {"a": [1, 2, 3]}}
    for i in range(iterations):
        payload["row"] = i
        hashlib.sha256(json.dumps(payload).encode()).hexdigest()


class LiveProbe:
    """A daemon thread that samples the reference request and the CPU workload until ``stop()``."""

    def __init__(self, base_url: str, path: Path, *, interval_s: float = INTERVAL_S) -> None:
        self.url = f"{base_url.rstrip('/')}/healthz"
        self.path = path
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="live-probe", daemon=True)
        self.rows: list[tuple[str, str, str, int]] = []

    def start(self) -> LiveProbe:
        self._thread.start()
        return self

    def stop(self) -> Path:
        self._stop.set()
        self._thread.join(timeout=10)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(self.rows)
        return self.path

    def _record(self, part: str, started: float, ok: bool) -> None:
        self.rows.append((f"{time.time():.3f}", part, f"{(time.perf_counter() - started) * 1000:.3f}", int(ok)))

    def _loop(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(self.interval_s):
                started = time.perf_counter()
                try:
                    ok = client.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self._record(REFERENCE, started, ok)
                started = time.perf_counter()
                cpu_work()
                self._record(CPU, started, True)


PAIRED_SUFFIX = " / reference"  # a series divided, request by request, by the reference's time-local median
PAIR_MARGIN_S = 1.0


def read_reference(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The successful reference requests of a ``probe.csv``: (wall-clock times, ms), by time."""
    table = pd.read_csv(path)
    table = table[(table["part"] == REFERENCE) & (table["ok"] == 1)].sort_values("t")
    return table["t"].to_numpy(dtype=float), table["ms"].to_numpy(dtype=float)


def paired_ratios(
    ends: np.ndarray, ms: np.ndarray, reference: tuple[np.ndarray, np.ndarray], *, margin_s: float = PAIR_MARGIN_S
) -> np.ndarray:
    """Each request's time divided by the median of the reference requests that finished while it ran or within
    ``margin_s`` of it (``ends``: wall-clock end times, as the sample files record them). A request no reference
    request came near is left out. What the server, the machine and the load's interleaving did to both at
    that moment cancels; what only the measured request's own path costs stays."""
    ref_t, ref_ms = reference
    starts = ends - ms / 1000.0
    low = np.searchsorted(ref_t, starts - margin_s, side="left")
    high = np.searchsorted(ref_t, ends + margin_s, side="right")
    ratios = [m / float(np.median(ref_ms[a:b])) for m, a, b in zip(ms, low, high, strict=True) if b > a]
    return np.asarray(ratios, dtype=float)
