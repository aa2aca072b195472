"""Timing one batch through the HTTP contract: upload → completed (polled every 20 ms) → downloaded, per provider
profile; the ideal schedule ceil(N / (B·C))·L it is compared with; the downloaded rows' numbering checked; the
spread of repeated runs summarised."""

from __future__ import annotations

import csv
import io
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import httpx

from utilities.client.api import TERMINAL_STATUSES, ApiFailure, BatchApi

POLL_INTERVAL_S = 0.020
BATCH_TIMEOUT_S = 300.0
WARMUP_ROWS = 10
TARGET_AS_CONFIGURED = "target as configured"


@dataclass(frozen=True)
class Profile:
    """A provider configuration; ``latency_ms`` is None when the target's own settings are unknown."""

    name: str
    latency_ms: float | None = None
    batch_size: int | None = None
    concurrency: int | None = None

    def backend_env(self, max_prompts: int) -> dict[str, str]:
        env = {"BATCHQA_MAX_PROMPTS": str(max_prompts)}
        if self.latency_ms is not None:
            env["BATCHQA_PROVIDER_LATENCY_MS"] = f"{self.latency_ms:g}"
        if self.batch_size is not None:
            env["BATCHQA_PROVIDER_BATCH_SIZE"] = str(self.batch_size)
        if self.concurrency is not None:
            env["BATCHQA_WORKER_CONCURRENCY"] = str(self.concurrency)
        return env

    def ideal_s(self, n: int) -> float | None:
        if self.latency_ms is None or self.batch_size is None or self.concurrency is None:
            return None
        return ideal_schedule_s(n, latency_ms=self.latency_ms, batch_size=self.batch_size, concurrency=self.concurrency)


def ideal_schedule_s(n: int, *, latency_ms: float, batch_size: int, concurrency: int) -> float:
    """Provider time alone: ``ceil(N / (B*C))`` waves of ``C`` concurrent calls of ``B`` rows, ``L`` each."""
    if n <= 0:
        return 0.0
    return math.ceil(n / (batch_size * concurrency)) * latency_ms / 1000


def default_profiles(*, latency_ms: float, batch_size: int, concurrency: int) -> list[Profile]:
    return [
        Profile("zero latency", latency_ms=0.0, batch_size=batch_size, concurrency=concurrency),
        Profile(
            f"L={latency_ms:g} ms, B={batch_size}, C={concurrency}",
            latency_ms=latency_ms,
            batch_size=batch_size,
            concurrency=concurrency,
        ),
    ]


def read_row_numbers(content: bytes) -> list[str]:
    """The ``row_number`` cells of a CSV download (UTF-8 with BOM), in file order."""
    reader = csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline=""))
    if not reader.fieldnames or "row_number" not in reader.fieldnames:
        raise ValueError(f"no row_number column; header is {reader.fieldnames}")
    return [row["row_number"] for row in reader]


def row_number_problems(numbers: Sequence[str], expected_rows: int) -> list[str]:
    """Every way ``numbers`` breaks "one row per input row, numbered 1..N in order"; empty if none."""
    problems = []
    if len(numbers) != expected_rows:
        problems.append(f"{len(numbers)} rows downloaded, expected {expected_rows}")
    for position, got in enumerate(numbers[:expected_rows], start=1):
        if got != str(position):
            problems.append(f"row {position} has row_number {got!r}, expected {position}")
            break
    return problems


@dataclass
class Run:
    """One measured upload → terminal → download; times in seconds."""

    profile: str
    n: int
    attempt: int
    batch_id: str | None = None
    status: str | None = None
    upload_s: float | None = None
    processing_s: float | None = None
    download_s: float | None = None
    total_s: float | None = None
    server_s: float | None = None
    polls: int = 0
    rows: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Spread:
    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(median=statistics.median(values), min=min(values), max=max(values))


@dataclass(frozen=True)
class Summary:
    """The runs of one (profile, N) point: medians, the spread of the total, and the ideal schedule."""

    profile: str
    n: int
    runs: int
    failed_runs: int
    total_s: Spread | None
    upload_s: float | None
    processing_s: float | None
    download_s: float | None
    ideal_s: float | None
    server_s: float | None = None  # created_at -> finished_at from the status body: no polling error

    @property
    def ratio(self) -> float | None:
        return _ratio(self.total_s.median if self.total_s else None, self.ideal_s)

    @property
    def processing_ratio(self) -> float | None:
        return _ratio(self.processing_s, self.ideal_s)

    @property
    def server_ratio(self) -> float | None:
        return _ratio(self.server_s, self.ideal_s)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ratio": self.ratio,
            "processing_ratio": self.processing_ratio,
            "server_ratio": self.server_ratio,
        }


def _ratio(measured: float | None, ideal: float | None) -> float | None:
    if measured is None or not ideal:
        return None
    return measured / ideal


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(runs: Sequence[Run], profiles: Sequence[Profile]) -> list[Summary]:
    """One summary per (profile, N) in the order first seen; only valid runs count towards the times."""
    by_name = {p.name: p for p in profiles}
    points: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        points.setdefault((run.profile, run.n), []).append(run)
    summaries = []
    for (name, n), group in points.items():
        good = [r for r in group if r.ok]
        totals = [r.total_s for r in good if r.total_s is not None]
        profile = by_name.get(name)
        summaries.append(
            Summary(
                profile=name,
                n=n,
                runs=len(group),
                failed_runs=len(group) - len(good),
                total_s=Spread.of(totals) if totals else None,
                upload_s=_median([r.upload_s for r in good]),
                processing_s=_median([r.processing_s for r in good]),
                download_s=_median([r.download_s for r in good]),
                ideal_s=profile.ideal_s(n) if profile else None,
                server_s=_median([r.server_s for r in good]),
            )
        )
    return summaries


def _iso_seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None


def _poll_until_terminal(
    api: BatchApi, batch_id: str, *, interval_s: float, timeout_s: float
) -> tuple[dict[str, Any], float, int]:
    """Poll on a fixed grid of ``interval_s`` (ticks missed during a slow request are skipped, not queued)."""
    started = time.perf_counter()
    tick = started
    polls = 0
    while True:
        status = api.status(batch_id)
        polls += 1
        now = time.perf_counter()
        if status["status"] in TERMINAL_STATUSES:
            return status, now, polls
        if now - started > timeout_s:
            raise TimeoutError(f"batch {batch_id} still {status['status']} after {timeout_s:.0f} s")
        tick += interval_s * max(1, math.ceil((now - tick) / interval_s))
        time.sleep(max(0.0, tick - now))


def measure(
    api: BatchApi,
    profile: str,
    n: int,
    attempt: int,
    content: bytes,
    *,
    interval_s: float = POLL_INTERVAL_S,
    timeout_s: float = BATCH_TIMEOUT_S,
) -> Run:
    """Upload ``content`` (``n`` rows), wait for a terminal status, download the CSV and check it."""
    run = Run(profile=profile, n=n, attempt=attempt)
    try:
        t0 = time.perf_counter()
        accepted = api.upload(content=content, filename=f"bench-{n}.csv")
        t1 = time.perf_counter()
        run.batch_id = accepted["batch_id"]
        status, t2, run.polls = _poll_until_terminal(api, run.batch_id, interval_s=interval_s, timeout_s=timeout_s)
        run.status = status["status"]
        run.server_s = _iso_seconds(status.get("created_at"), status.get("finished_at"))
        t3 = time.perf_counter()
        body = api.download(run.batch_id, "csv")
        t4 = time.perf_counter()
    except (ApiFailure, TimeoutError, httpx.HTTPError) as exc:
        run.problems.append(f"{type(exc).__name__}: {exc}")
        return run
    run.upload_s, run.processing_s, run.download_s = t1 - t0, t2 - t1, t4 - t3
    run.total_s = run.upload_s + run.processing_s + run.download_s
    if run.status != "completed":
        run.problems.append(f"batch ended {run.status}, expected completed")
    try:
        numbers = read_row_numbers(body)
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        run.problems.append(f"unreadable CSV download: {exc}")
        return run
    run.rows = len(numbers)
    run.problems.extend(row_number_problems(numbers, n))
    return run
