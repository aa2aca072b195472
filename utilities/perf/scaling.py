"""``batchqa scaling``: completion time against batch size (linear fit) and memory over consecutive batches."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from utilities.client.api import BatchApi
from utilities.gen import GenSpec, generate
from utilities.perf.batch_timing import Profile, Run, measure
from utilities.perf.gate import Baseline, checks_table, default_baseline, evaluate, wide_console
from utilities.perf.load import REPORTS_DIR
from utilities.perf.server_memory import MIB, MemorySampler, MemorySource
from utilities.procs.process_metrics import machine_facts
from utilities.procs.target import target

SIZES = (10, 100, 250, 500, 1000)
REPEAT = 5
STATISTICS = {"min": min, "median": statistics.median}
LEAK_BATCHES = 20
LEAK_SIZE = 1000
WARMUP_BATCHES = 3
DEFAULT_OUT = REPORTS_DIR / "scaling"


@dataclass(frozen=True)
class Fit:
    """Least-squares line ``seconds = intercept + slope * prompts`` and its coefficient of determination."""

    slope: float
    intercept: float
    r2: float


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> Fit:
    if len(xs) != len(ys) or len(set(xs)) < 2:
        raise ValueError("a linear fit needs at least two distinct x values, one y per x")
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = mean_y - slope * mean_x
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    total = sum((y - mean_y) ** 2 for y in ys)
    return Fit(slope, intercept, 1.0 - residual / total if total else 1.0)


@dataclass
class ScalingResult:
    """Every timed run; each size is summarised by ``statistic`` over its runs.

    ``min`` by default, for timeit's reason: on a shared machine other processes only ever add time,
    so the fastest of several runs is the closest to what the backend itself costs; ``median`` is
    there for a dedicated machine.
    """

    runs: list[Run]
    statistic: str = "min"

    def points(self) -> dict[int, list[float]]:
        points: dict[int, list[float]] = {}
        for run in self.runs:
            if run.ok and run.total_s is not None:
                points.setdefault(run.n, []).append(run.total_s)
        return dict(sorted(points.items()))

    def times(self) -> dict[int, float]:
        return {n: STATISTICS[self.statistic](times) for n, times in self.points().items()}

    def fit(self) -> Fit | None:
        times = self.times()
        return linear_fit(list(times), list(times.values())) if len(times) >= 2 else None

    def fit_all_runs(self) -> Fit | None:
        pairs = [(n, t) for n, times in self.points().items() for t in times]
        if len({n for n, _ in pairs}) < 2:
            return None
        return linear_fit([n for n, _ in pairs], [t for _, t in pairs])

    def metrics(self) -> dict[str, float]:
        times = self.times()
        metrics: dict[str, float] = {f"scaling_t{n}_s": t for n, t in times.items()}
        metrics |= {f"scaling_median_t{n}_s": statistics.median(ts) for n, ts in self.points().items()}
        metrics["scaling_failed_runs"] = sum(1 for r in self.runs if not r.ok)
        if fit := self.fit():
            metrics |= {
                "scaling_r2": fit.r2,
                "scaling_ms_per_prompt": fit.slope * 1000,
                "scaling_intercept_s": fit.intercept,
            }
        if fit := self.fit_all_runs():
            metrics["scaling_r2_all_runs"] = fit.r2
        if 100 in times and 1000 in times:
            metrics["scaling_ratio_1000_100"] = times[1000] / times[100]
        return metrics


@dataclass
class LeakResult:
    runs: list[Run]
    rss_after: list[tuple[int, int]]  # (batches done, bytes)
    samples: list[tuple[float, int]]
    warmup: int

    def metrics(self) -> dict[str, float]:
        metrics: dict[str, float] = {
            "leak_batches": len(self.runs),
            "leak_failed_runs": sum(not r.ok for r in self.runs),
        }
        after = [(i, v) for i, v in self.rss_after if i >= self.warmup]
        if len(after) >= 2:
            metrics["leak_growth_mb"] = (after[-1][1] - after[0][1]) / MIB
            trend = linear_fit([i for i, _ in after], [v / MIB for _, v in after])
            metrics["leak_slope_mb_per_batch"] = trend.slope
        if self.rss_after:
            metrics["leak_rss_start_mb"] = self.rss_after[0][1] / MIB
            metrics["leak_rss_end_mb"] = self.rss_after[-1][1] / MIB
            metrics["leak_rss_peak_mb"] = max(v for _, v in self.samples or self.rss_after) / MIB
        return metrics


def run_scaling(api: BatchApi, sizes: Sequence[int], repeat: int, progress: Progress) -> ScalingResult:
    """Round-robin over the sizes, ``repeat`` rounds, so machine noise spreads over every size alike."""
    inputs = {n: generate(GenSpec(rows=n, seed=0)) for n in sizes}
    measure(api, "warm-up", 10, 0, generate(GenSpec(rows=10, seed=1)))
    task = progress.add_task("scaling", total=len(sizes) * repeat)
    runs = []
    for attempt in range(1, repeat + 1):
        for n in sizes:
            progress.update(task, description=f"scaling N={n} #{attempt}")
            runs.append(measure(api, "scaling", n, attempt, inputs[n]))
            progress.advance(task)
    return ScalingResult(runs)


def run_leak(api: BatchApi, source: MemorySource, batches: int, warmup: int, progress: Progress) -> LeakResult:
    """``batches`` 1000-prompt batches back to back; server RSS after each (upload → done → CSV)."""
    content = generate(GenSpec(rows=LEAK_SIZE, seed=3))
    sampler = MemorySampler(source)
    sampler.start()
    runs, rss_after = [], []
    task = progress.add_task("leak", total=batches)
    try:
        for index in range(1, batches + 1):
            progress.update(task, description=f"leak batch {index}/{batches}")
            runs.append(measure(api, "leak", LEAK_SIZE, index, content))
            if (rss := source.read()) is not None:
                rss_after.append((index, rss))
            progress.advance(task)
    finally:
        samples = sampler.stop()
    return LeakResult(runs, rss_after, samples, warmup)


def _lines(scaling: ScalingResult, leak: LeakResult | None, settings: dict[str, Any]) -> list[str]:
    lines = [
        f"Settings: {json.dumps(settings)}.",
        "Time = upload request → terminal status seen (status polled every 20 ms) → CSV downloaded and its row "
        "numbers checked (utilities/perf/bench.measure). Fit: least squares over the "
        f"{scaling.statistic} time of each size (all runs are plotted).",
    ]
    if fit := scaling.fit():
        lines.append(f"t = {fit.intercept:.3f} s + {fit.slope * 1000:.3f} ms × N, R² = {fit.r2:.4f}.")
    if leak:
        lines.append(
            f"Leak: {len(leak.runs)} consecutive {LEAK_SIZE}-prompt batches; growth = RSS after the last batch − RSS "
            f"after batch {leak.warmup} (warm-up)."
        )
    return lines


@click.command("scaling")
@click.option("--sizes", default=",".join(map(str, SIZES)), show_default=True, help="Comma-separated batch sizes.")
@click.option("--repeat", type=click.IntRange(min=1), default=REPEAT, show_default=True, help="Runs per size.")
@click.option(
    "--statistic",
    type=click.Choice(sorted(STATISTICS)),
    default="min",
    show_default=True,
    help="How the runs of one size are summarised (min: other processes only ever add time).",
)
@click.option("--leak-batches", type=click.IntRange(min=0), default=LEAK_BATCHES, show_default=True)
@click.option("--warmup-batches", type=click.IntRange(min=1), default=WARMUP_BATCHES, show_default=True)
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Bundled provider.")
@click.option("--batch-size", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--concurrency", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--base-url", envvar="BATCHQA_BASE_URL", default=None, help="Target; default: a bundled backend.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True)
@click.option("--baseline", type=click.Path(exists=True, path_type=Path), default=None, help="Default: scaling.json.")
def scaling_command(
    sizes: str,
    repeat: int,
    statistic: str,
    leak_batches: int,
    warmup_batches: int,
    latency_ms: float,
    batch_size: int,
    concurrency: int,
    base_url: str | None,
    out: Path,
    baseline: Path | None,
) -> None:
    """Time each batch size and fit a line (aim: R² >= 0.99, t(1000)/t(100) <= 10.5); then run consecutive
    1000-prompt batches and watch server memory (aim: < 10 MiB growth after warm-up). Exit 1 on a miss."""
    try:
        size_list = sorted({int(s) for s in sizes.split(",") if s.strip()})
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {sizes!r}", param_hint="--sizes") from None
    out.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    provider = Profile("scaling", latency_ms=latency_ms, batch_size=batch_size, concurrency=concurrency)
    env = provider.backend_env(max(*size_list, LEAK_SIZE))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    leak = None
    with Progress(*columns, console=console) as progress:
        with (
            target(base_url, env=env, log_path=out / "server.log", prefix="batchqa-scaling-") as (url, _server),
            BatchApi.new_user(url, "scaling") as api,
        ):
            scaling = run_scaling(api, size_list, repeat, progress)
            scaling.statistic = statistic
        if leak_batches:
            # A backend of its own, so memory starts from a fresh process rather than after the scaling runs.
            with (
                target(base_url, env=env, log_path=out / "server.log", prefix="batchqa-scaling-") as (url, server),
                BatchApi.new_user(url, "leak") as api,
            ):
                pid = server.process.pid if server and server.process else None
                source = MemorySource(pid=pid, base_url=url)
                leak = run_leak(api, source, leak_batches, warmup_batches, progress)
    settings = {
        "sizes": size_list,
        "repeat": repeat,
        "statistic": statistic,
        "leak_batches": leak_batches,
        "warmup_batches": warmup_batches,
        "provider": None if base_url else asdict(provider),
    }
    metrics = scaling.metrics() | (leak.metrics() if leak else {})
    summary = {
        "profile": {"name": "scaling", "description": "batch-size scaling and consecutive-batch memory"},
        "target": base_url or "bundled backend",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": settings,
        "machine": machine_facts(),
        "metrics": metrics,
        "runs": [asdict(r) for r in scaling.runs + (leak.runs if leak else [])],
        "leak_rss_after": leak.rss_after if leak else [],
        "notes": [] if not leak or leak.rss_after else ["server memory: not available"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    from utilities.perf.report import write_index, write_scaling_report

    fit = scaling.fit()
    write_scaling_report(
        out,
        points=scaling.points(),
        fit=(fit.slope, fit.intercept, fit.r2) if fit else None,
        line=scaling.times(),
        line_label=f"{scaling.statistic} of {repeat} runs",
        memory_by_batch=leak.rss_after if leak else [],
        memory_over_time=leak.samples if leak else [],
        metrics=metrics,
        lines=_lines(scaling, leak, settings),
        warmup_batches=warmup_batches,
    )
    if out.parent.resolve() == REPORTS_DIR.resolve():
        write_index(out.parent)
    report = evaluate(metrics, Baseline.load(baseline or default_baseline("scaling")))
    wide = wide_console()
    wide.print(checks_table(report))
    wide.print(f"written to {out} (summary.json, index.html, scaling.png, leak.png, memory.png)")
    if problems := report.problems():
        wide.print("[bold red]scaling aims missed:[/]\n  - " + "\n  - ".join(problems))
        raise SystemExit(1)


if __name__ == "__main__":
    scaling_command()
