"""Post the hostile corpus to a target and report wrong answers, slow answers and the server's memory (its
resident and peak memory read from ``/proc``, Linux)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from utilities.client.api import BatchApi
from utilities.gen.hostile_file import HostileFile
from utilities.procs.process_metrics import MemorySample, cpu_seconds, read_memory, reset_peak


@dataclass(frozen=True)
class Answer:
    """What the target answered to one corpus entry."""

    entry: HostileFile
    status: int
    code: str | None
    seconds: float
    server_cpu_s: float | None = None  # the server's CPU time during the request, when it runs on this machine

    def problem(self, max_seconds: float, max_server_cpu_s: float | None = None) -> str | None:
        if (self.status, self.code) != (self.entry.status, self.entry.code):
            return f"{self.entry.name}: got {self.status} {self.code}, expected {self.entry.status} {self.entry.code}"
        if self.seconds > max_seconds:
            return f"{self.entry.name}: answered in {self.seconds:.2f} s, the limit is {max_seconds:g} s"
        if max_server_cpu_s is not None and self.server_cpu_s is not None and self.server_cpu_s > max_server_cpu_s:
            cost = f"{self.server_cpu_s:.2f} s of CPU"
            return f"{self.entry.name}: cost the server {cost}, the limit is {max_server_cpu_s:g} s"
        return None


@dataclass
class CorpusReport:
    """The answers to a corpus run, the server's memory around it, and what went wrong."""

    answers: list[Answer]
    max_seconds: float
    memory_limit_mib: float
    max_server_cpu_s: float | None = None
    before: MemorySample | None = None
    after: MemorySample | None = None
    peak_reset: bool = False
    batches_created: int = 0
    extra: list[str] = field(default_factory=list)

    @property
    def slowest(self) -> Answer:
        return max(self.answers, key=lambda answer: answer.seconds)

    @property
    def growth_mib(self) -> float | None:
        """Resident memory after the corpus minus before it."""
        return None if self.before is None or self.after is None else (self.after.rss_kib - self.before.rss_kib) / 1024

    @property
    def peak_growth_mib(self) -> float | None:
        """The peak during the corpus minus the resident memory before it."""
        if self.before is None or self.after is None:
            return None
        baseline = self.before.rss_kib if self.peak_reset else self.before.peak_kib
        return (self.after.peak_kib - baseline) / 1024

    def problems(self) -> list[str]:
        found = [
            problem for answer in self.answers if (problem := answer.problem(self.max_seconds, self.max_server_cpu_s))
        ]
        for label, growth in (("resident memory", self.growth_mib), ("peak memory", self.peak_growth_mib)):
            if growth is not None and growth >= self.memory_limit_mib:
                found.append(f"the server's {label} grew by {growth:.0f} MiB; the limit is {self.memory_limit_mib:g}")
        if self.batches_created:
            found.append(f"{self.batches_created} batch(es) were created from hostile files")
        return found + self.extra

    def summary(self) -> str:
        slowest = self.slowest
        costs = [a for a in self.answers if a.server_cpu_s is not None]
        costliest = max(costs, key=lambda a: a.server_cpu_s or 0.0) if costs else None
        cpu = f", costliest {costliest.entry.name}: {costliest.server_cpu_s:.2f} s of server CPU" if costliest else ""
        memory = ""
        if self.before is not None and self.after is not None:
            memory = (
                f"; server RSS {self.before.rss_kib / 1024:.0f} -> {self.after.rss_kib / 1024:.0f} MiB, "
                f"peak {self.after.peak_kib / 1024:.0f} MiB"
                + ("" if self.peak_reset else " (peak not reset: includes start-up)")
            )
        return (
            f"{len(self.answers)} hostile files, slowest {slowest.entry.name} in {slowest.seconds:.2f} s{cpu}{memory}: "
            + ("OK" if not self.problems() else f"{len(self.problems())} problem(s)")
        )


def run_corpus(
    api: BatchApi,
    entries: Sequence[HostileFile],
    *,
    pid: int | None = None,
    seed: int = 0,
    max_seconds: float = 2.0,
    memory_limit_mib: float = 100.0,
    max_server_cpu_s: float | None = None,
) -> CorpusReport:
    """Post every entry as ``api``'s user and collect the answers; ``pid`` (a local server) adds its memory and
    the CPU time each request cost it, which ``max_server_cpu_s`` bounds.

    Each file is built before its clock starts, so the time is the request's alone. Wall time on a shared machine
    grows with everyone else's load; the server's CPU time grows only with the work a file makes it do, so it is
    the fair measure of amplification where it can be read.
    """
    before = None
    peak_reset = False
    if pid is not None:
        peak_reset = reset_peak(pid)
        before = read_memory(pid)
    answers = []
    for entry in entries:
        filename, data = entry(seed)
        cpu_before = cpu_seconds(pid) if pid is not None else None
        started = time.perf_counter()
        response = api.upload_raw(content=data, filename=filename)
        seconds = time.perf_counter() - started
        cpu_after = cpu_seconds(pid) if pid is not None else None
        server_cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        answers.append(Answer(entry, response.status_code, code, seconds, server_cpu))
    after = read_memory(pid) if pid is not None else None
    return CorpusReport(
        answers=answers,
        max_seconds=max_seconds,
        memory_limit_mib=memory_limit_mib,
        max_server_cpu_s=max_server_cpu_s,
        before=before,
        after=after,
        peak_reset=peak_reset,
        batches_created=len(api.list_batches()),
    )
