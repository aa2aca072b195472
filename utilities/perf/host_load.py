"""How busy the machine was during a run: the cores this run (the kit, its backend, Locust) and everything else
used, the time this run's threads waited for a CPU, and a wait for a quiet spell before a run."""

from __future__ import annotations

import logging
import os
import time

from utilities.procs.process_metrics import cpu_seconds, machine_busy_seconds, process_tree, run_wait_ns

log = logging.getLogger(__name__)


class CpuShare:
    """How many cores this run (the kit, its backend, Locust) and everything else used meanwhile.

    On a shared machine another job's CPU use inflates every latency this run measures; the gate
    reads ``host_other_cores`` to tell a slow build from a busy neighbour. ``host_run_wait`` is the
    time this run's threads were ready to run but waited for a CPU, per second: how much the contention
    actually cost this run (low for a run at raised priority on a busy machine).
    """

    def __init__(self, root: int | None = None) -> None:
        self.root = root or os.getpid()
        self.own_s = self.other_s = self.wall_s = self.wait_s = 0.0
        self._last: tuple[float, float, dict[int, float], dict[int, int]] | None = None

    def sample(self) -> None:
        now, busy = time.monotonic(), machine_busy_seconds()
        pids = process_tree(self.root)
        tree = {pid: seconds for pid in pids if (seconds := cpu_seconds(pid)) is not None}
        waits = {pid: run_wait_ns(pid) for pid in pids}
        if self._last is not None:
            then, busy_then, tree_then, waits_then = self._last
            own = sum(seconds - tree_then[pid] for pid, seconds in tree.items() if pid in tree_then)
            self.own_s += own
            self.other_s += max(0.0, busy - busy_then - own)
            self.wait_s += sum(max(0, ns - waits_then[pid]) for pid, ns in waits.items() if pid in waits_then) / 1e9
            self.wall_s += now - then
        self._last = (now, busy, tree, waits)

    def metrics(self) -> dict[str, float]:
        if not self.wall_s:
            return {}
        return {
            "host_own_cores": self.own_s / self.wall_s,
            "host_other_cores": self.other_s / self.wall_s,
            "host_run_wait": self.wait_s / self.wall_s,
            "host_cpus": float(len(os.sched_getaffinity(0))),
        }


def other_cores_now(window_s: float = 3.0) -> float:
    """Cores the rest of the machine keeps busy, measured over ``window_s`` while this process waits."""
    before, started = machine_busy_seconds(), time.monotonic()
    time.sleep(window_s)  # the measurement window itself
    return (machine_busy_seconds() - before) / (time.monotonic() - started)


def wait_for_quiet(limit: float, timeout_s: float, *, window_s: float = 3.0) -> float:
    """Measure other processes' CPU use in ``window_s`` windows until it is at most ``limit`` cores or
    ``timeout_s`` has passed; returns the last measurement. A run started on a busy machine only yields
    inconclusive regression verdicts, so a person (or ``gate-audit``) waits for a quiet spell first."""
    deadline = time.monotonic() + timeout_s
    while True:
        other = other_cores_now(window_s)
        if other <= limit or time.monotonic() >= deadline:
            return other
        log.info("machine busy (%.2f other cores > %.2f); waiting", other, limit)
