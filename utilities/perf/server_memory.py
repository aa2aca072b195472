"""The server's memory over a run: read from ``/proc`` for a backend the kit started, else from the target's
``/metrics``; sampled on a thread; its growth after warm-up; written as CSV."""

from __future__ import annotations

import csv
import re
import statistics
import threading
import time
from pathlib import Path

import httpx

from utilities.perf.host_load import CpuShare
from utilities.procs.process_metrics import tree_rss_bytes

MIB = 1024 * 1024
SAMPLE_INTERVAL_S = 0.5


def metrics_value(text: str, metric: str) -> float | None:
    """The sum of every sample of ``metric`` in a Prometheus text page, None when absent."""
    pattern = re.compile(rf"^{re.escape(metric)}(?:\{{[^}}]*\}})?\s+([0-9.eE+-]+)", re.MULTILINE)
    values = [float(v) for v in pattern.findall(text)]
    return sum(values) if values else None


class MemorySource:
    """Where server memory comes from: /proc for a backend the kit started, else the target's /metrics."""

    def __init__(self, *, pid: int | None = None, base_url: str | None = None) -> None:
        self.pid = pid
        self.base_url = base_url
        self.description = (
            f"VmRSS of PID {pid} (/proc)" if pid else f"process_resident_memory_bytes of {base_url}/metrics"
        )

    def read(self) -> int | None:
        if self.pid:
            return tree_rss_bytes(self.pid)
        try:
            text = httpx.get(f"{self.base_url}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None
        value = metrics_value(text, "process_resident_memory_bytes")
        return int(value) if value is not None else None


class MemorySampler(threading.Thread):
    """Samples ``source`` every ``interval_s`` into ``samples`` as (seconds since start, bytes), and
    ``cpu`` alongside when given."""

    def __init__(
        self, source: MemorySource, interval_s: float = SAMPLE_INTERVAL_S, *, cpu: CpuShare | None = None
    ) -> None:
        super().__init__(daemon=True, name="memory-sampler")
        self.source = source
        self.cpu = cpu
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        while not self._halt.is_set():
            value = self.source.read()
            if value is not None:
                self.samples.append((time.monotonic() - self._t0, value))
            if self.cpu is not None:
                self.cpu.sample()
            self._halt.wait(self.interval_s)

    def stop(self) -> list[tuple[float, int]]:
        self._halt.set()
        self.join(timeout=5)
        return self.samples


def memory_growth(samples: list[tuple[float, int]], warmup_s: float) -> float | None:
    """MiB between the median just after warm-up and the median at the end (windows of 10%, >= 2 s)."""
    after = [(t, v) for t, v in samples if t >= warmup_s]
    if len(after) < 2:
        return None
    span = after[-1][0] - after[0][0]
    window = max(2.0, span / 10)
    first = [v for t, v in after if t <= after[0][0] + window]
    last = [v for t, v in after if t >= after[-1][0] - window]
    return (statistics.median(last) - statistics.median(first)) / MIB


def write_memory(path: Path, samples: list[tuple[float, int]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["elapsed_s", "rss_bytes"])
        writer.writerows((f"{t:.2f}", v) for t, v in samples)
