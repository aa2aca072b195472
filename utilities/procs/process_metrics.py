"""What a process and the machine cost: resident memory, CPU time, the process tree, the machine's busy CPU time
(``psutil``), and the two readings psutil does not give, both Linux-only and read from ``/proc``: the time a
process's threads waited for a CPU (``schedstat``) and a process's peak resident memory (``VmHWM``) with its reset.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (a backend's workers, Locust's ``--processes`` children); [] when gone."""
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.Error:
        return []


def rss_bytes(pid: int) -> int | None:
    """Resident memory of one process; None when it is gone."""
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return None


def tree_rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` and its descendants; None when ``pid`` itself is gone."""
    total = rss_bytes(pid)
    if total is None:
        return None
    return total + sum(rss or 0 for child in process_tree(pid)[1:] if (rss := rss_bytes(child)) is not None)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time one process has used; None when it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def machine_busy_seconds() -> float:
    """CPU time every core has spent on anything but idle and I/O wait since boot."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def run_wait_ns(pid: int) -> int:
    """Nanoseconds the threads of ``pid`` spent runnable but waiting for a CPU (Linux: ``/proc/PID/task/*/schedstat``;
    0 elsewhere)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass(frozen=True)
class MemorySample:
    """A process's resident memory and its peak since start (or since the peak was last reset), in KiB."""

    rss_kib: int
    peak_kib: int


def read_memory(pid: int) -> MemorySample:
    """VmRSS and VmHWM from ``/proc/<pid>/status`` (Linux: psutil has no peak)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return MemorySample(rss_kib=fields["VmRSS"], peak_kib=fields["VmHWM"])


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/<pid>/clear_refs``, Linux 4.0+); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def machine_facts() -> dict[str, Any]:
    """The machine a measurement ran on: CPUs (and how many this process may use), Python, platform."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(affinity(0)) if affinity else None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
