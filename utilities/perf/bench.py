"""Benchmark upload → completed → downloaded through the HTTP contract, per provider profile and size."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from utilities.client.api import BatchApi
from utilities.gen import GenSpec, generate
from utilities.perf.batch_timing import (
    POLL_INTERVAL_S,
    TARGET_AS_CONFIGURED,
    WARMUP_ROWS,
    Profile,
    Run,
    default_profiles,
    measure,
    summarize,
)
from utilities.perf.bench_report import BenchReport, render_markdown, write_reports
from utilities.procs.process_metrics import machine_facts
from utilities.procs.target import target


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
    inputs = {n: generate(GenSpec(rows=n, seed=0)) for n in sizes}
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
                measure(api, profile.name, WARMUP_ROWS, 0, generate(GenSpec(rows=WARMUP_ROWS, seed=1)))
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
