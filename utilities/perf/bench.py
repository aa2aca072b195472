"""Benchmark upload → completed → downloaded through the HTTP contract, per provider profile and size."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from utilities.client.api import TERMINAL_STATUSES, ApiFailure, BatchApi
from utilities.gen import GenSpec, generate
from utilities.procs.target import target

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


def prompt_csv(n: int, *, seed: int = 0) -> bytes:
    """A deterministic prompt,category,tags CSV of ``n`` plain, sentence-like prompts."""
    return generate(GenSpec(rows=n, seed=seed))


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


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render_markdown(summaries: Sequence[Summary], *, poll_interval_s: float = POLL_INTERVAL_S) -> str:
    """The results table; times are medians over the valid runs of each point."""
    lines = [
        "| profile | N | total s (median) | total min–max | upload s | processing s | download s "
        "| server s | ideal s | total/ideal | processing/ideal | server/ideal | runs (failed) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        spread = f"{s.total_s.min:.3f}–{s.total_s.max:.3f}" if s.total_s else "–"
        lines.append(
            f"| {s.profile} | {s.n} | {_num(s.total_s.median if s.total_s else None)} | {spread} "
            f"| {_num(s.upload_s)} | {_num(s.processing_s)} | {_num(s.download_s)} | {_num(s.server_s)} "
            f"| {_num(s.ideal_s)} | {_num(s.ratio, 2)} | {_num(s.processing_ratio, 2)} "
            f"| {_num(s.server_ratio, 2)} | {s.runs} ({s.failed_runs}) |"
        )
    lines.append("")
    lines.append(
        f"Processing = upload accepted → terminal status, observed by polling the status endpoint every "
        f"{poll_interval_s * 1000:.0f} ms (resolution: one interval plus one status round trip). "
        "Server = the batch's created_at → finished_at as the status endpoint reports it (no polling error). "
        "Ideal = ceil(N / (B*C)) * L, the provider's time alone."
    )
    return "\n".join(lines) + "\n"


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


def machine_facts() -> dict[str, Any]:
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(affinity(0)) if affinity else None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


@dataclass
class BenchReport:
    settings: dict[str, Any]
    machine: dict[str, Any]
    runs: list[Run]
    summaries: list[Summary]

    def problems(self) -> list[str]:
        return [f"{r.profile} N={r.n} #{r.attempt}: {p}" for r in self.runs for p in r.problems]

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "machine": self.machine,
            "summaries": [s.as_dict() for s in self.summaries],
            "runs": [asdict(r) for r in self.runs],
        }


def run_bench(
    *,
    sizes: Sequence[int],
    repeat: int,
    profiles: Sequence[Profile],
    base_url: str | None,
    out: Path,
    console: Console | None = None,
) -> BenchReport:
    """Every (profile, size) ``repeat`` times, one batch at a time, after one unmeasured warm-up batch."""
    out.mkdir(parents=True, exist_ok=True)
    console = console or Console(stderr=True)
    inputs = {n: prompt_csv(n) for n in sizes}
    runs: list[Run] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("bench", total=len(profiles) * len(sizes) * repeat)
        for profile in profiles:
            progress.update(task, description=f"starting {profile.name}")
            slug = "-".join(re.findall(r"[A-Za-z0-9]+", profile.name))
            server_log = out / f"server-{slug}.log"
            server_log.unlink(missing_ok=True)
            env = profile.backend_env(max(sizes))
            bundled = target(base_url, env=env, log_path=server_log, prefix="batchqa-bench-")
            with bundled as (url, _server), BatchApi.new_user(url, "bench") as api:
                measure(api, profile.name, WARMUP_ROWS, 0, prompt_csv(WARMUP_ROWS, seed=1))
                for n in sizes:
                    for attempt in range(1, repeat + 1):
                        progress.update(task, description=f"{profile.name} N={n} #{attempt}")
                        run = measure(api, profile.name, n, attempt, inputs[n])
                        runs.append(run)
                        progress.console.print(_run_line(run))
                        progress.advance(task)
    settings = {
        "sizes": list(sizes),
        "repeat": repeat,
        "profiles": [asdict(p) for p in profiles],
        "base_url": base_url,
        "poll_interval_s": POLL_INTERVAL_S,
        "warmup_rows": WARMUP_ROWS,
        "started_backend": base_url is None,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return BenchReport(settings, machine_facts(), runs, summarize(runs, profiles))


def _run_line(run: Run) -> str:
    if not run.ok:
        return f"[red]FAIL[/] {run.profile} N={run.n} #{run.attempt}: {'; '.join(run.problems)}"
    return (
        f"ok   {run.profile} N={run.n} #{run.attempt}: total {run.total_s:.3f} s "
        f"(upload {run.upload_s:.3f}, processing {run.processing_s:.3f}, download {run.download_s:.3f})"
    )


def write_reports(report: BenchReport, out: Path) -> tuple[list[Path], str | None]:
    """bench.json, bench.md and, when matplotlib is importable, bench.png; returns paths and a note."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "bench.json", out / "bench.md"
    json_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    machine = report.machine
    md_path.write_text(
        "# Batch benchmark: upload → completed → downloaded\n\n"
        f"{machine['platform']}, Python {machine['python']}, {machine['cpu_count']} CPUs; "
        f"{report.settings['repeat']} runs per point; {report.settings['at']}.\n\n"
        + render_markdown(report.summaries, poll_interval_s=report.settings["poll_interval_s"]),
        encoding="utf-8",
    )
    written = [json_path, md_path]
    try:
        written.append(_plot(report.summaries, out / "bench.png"))
    except ImportError:
        return written, "matplotlib is not installed: no bench.png"
    return written, None


def _plot(summaries: Sequence[Summary], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(s.profile for s in summaries):
        points = [s for s in summaries if s.profile == name and s.total_s]
        if not points:
            continue
        xs = [s.n for s in points]
        medians = [s.total_s.median for s in points]
        errors = [
            [m - s.total_s.min for m, s in zip(medians, points, strict=True)],
            [s.total_s.max - m for m, s in zip(medians, points, strict=True)],
        ]
        line = ax.errorbar(xs, medians, yerr=errors, marker="o", capsize=3, label=f"{name}: total")
        ideal = [s.ideal_s for s in points]
        if all(ideal):
            ax.plot(xs, ideal, linestyle="--", color=line[0].get_color(), label=f"{name}: ideal")
    ax.set_xscale("log")
    ax.set_xlabel("prompts (N)")
    ax.set_ylabel("seconds (median, min–max)")
    ax.set_title("upload → completed → downloaded")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _sizes(_ctx: click.Context, _param: click.Parameter, value: str) -> list[int]:
    try:
        sizes = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("give at least one size, each at least 1")
    return sizes


@click.command("bench")
@click.option("--sizes", default="10,100,1000", callback=_sizes, show_default=True, help="Prompts per batch.")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True, help="Runs per point.")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=200.0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--concurrency", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--base-url",
    envvar="BATCHQA_BASE_URL",
    default=None,
    help="Measure this target as configured; default: start a bundled backend per profile.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports/bench"),
    show_default=True,
)
def bench_command(
    sizes: list[int],
    repeat: int,
    latency_ms: float,
    batch_size: int,
    concurrency: int,
    base_url: str | None,
    out: Path,
) -> None:
    """Measure upload → completed → downloaded for each size; exit 1 only if a run fails validation."""
    if base_url:
        profiles = [Profile(TARGET_AS_CONFIGURED)]
    else:
        profiles = default_profiles(latency_ms=latency_ms, batch_size=batch_size, concurrency=concurrency)
    report = run_bench(sizes=sizes, repeat=repeat, profiles=profiles, base_url=base_url, out=out)
    written, note = write_reports(report, out)
    click.echo(render_markdown(report.summaries))
    if note:
        click.echo(note)
    click.echo("wrote " + ", ".join(str(p) for p in written))
    if problems := report.problems():
        click.echo(f"{len(problems)} run(s) failed:\n  " + "\n  ".join(problems), err=True)
        raise SystemExit(1)


if __name__ == "__main__":
    bench_command()
