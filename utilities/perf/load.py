"""``batchqa load``: run a Locust profile (perf/ locustfile) against a target and collect what it measured."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from utilities.paths import REPO_ROOT
from utilities.perf import names, profiles
from utilities.perf.calibration import Calibration, probe
from utilities.perf.gate_runs import REPEAT_PREFIX, repeat_directory, repeat_option
from utilities.perf.host_load import CpuShare
from utilities.perf.idle_probe import IDLE_FILE, run_idle_probe
from utilities.perf.live_probe import PROBE_FILE, LiveProbe
from utilities.perf.load_summary import summarize_entries
from utilities.perf.server_memory import MemorySampler, MemorySource, metrics_value, write_memory
from utilities.procs.process_metrics import machine_facts
from utilities.procs.target import target

log = logging.getLogger(__name__)

REPORTS_DIR = Path("reports/perf")
SUMMARY_FILE = "summary.json"
SAMPLES_FILE = "samples.csv"
FAULTS_ENV = "BATCHQA_FAULTS"
LOCUST_GRACE_S = 90.0


# Running


@dataclass
class LoadRun:
    """One ``batchqa load`` run: where its files are, what it measured, how Locust exited."""

    out: Path
    profile: dict[str, Any]
    target: str
    started_backend: bool
    command: list[str]
    exit_code: int
    metrics: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, float] | None = None
    faults: str = ""
    memory_source: str | None = None
    notes: list[str] = field(default_factory=list)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out": str(self.out), "machine": machine_facts()}

    def write(self) -> Path:
        path = self.out / SUMMARY_FILE
        path.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return path


def _server_rows(url: str) -> float | None:
    """Rows the target's workers have finished (its /metrics counter); 0 before the first one, None
    when there is no /metrics."""
    try:
        response = httpx.get(f"{url}/metrics", timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return metrics_value(response.text, "batchqa_rows_processed_total") or 0.0


def locust_command(profile: Any, url: str, out: Path, *, processes: int | None) -> list[str]:
    prefix = str(out / "locust")
    command = [sys.executable, "-m", "locust", "-f", str(profiles.LOCUSTFILE), "--headless", "--host", url]
    command += profiles.locust_options(profile)
    command += ["--csv", prefix, "--csv-full-history", "--json-file", prefix, "--html", f"{prefix}.html"]
    command += ["--samples", f"{prefix}_samples"]
    command += ["--only-summary", "--loglevel", "INFO"]
    if processes:
        command += ["--processes", str(processes)]
    return command


class _HistoryTail:
    """Reads the rows Locust appends to ``locust_stats_history.csv`` for the live display."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.header: list[str] | None = None
        self.latest: dict[str, dict[str, str]] = {}

    def poll(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", newline="") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        end = chunk.rfind("\n")
        if end < 0:
            return
        self.offset += len(chunk[: end + 1].encode("utf-8"))
        rows = list(csv.reader(chunk[: end + 1].splitlines()))
        if self.header is None and rows:
            self.header, rows = rows[0], rows[1:]
        for row in rows:
            record = dict(zip(self.header or [], row, strict=False))
            self.latest[f"{record.get('Type', '')} {record.get('Name', '')}".strip()] = record

    def line(self, names: Any) -> str:
        aggregated = self.latest.get("Aggregated", {})
        http = [r for key, r in self.latest.items() if key.split(" ", 1)[0] in names.HTTP_METHODS]
        rps = sum(_float(r.get("Requests/s")) for r in http)
        fails = sum(_float(r.get("Total Failure Count")) for r in self.latest.values() if r.get("Name") != "Aggregated")
        lag = self.latest.get(f"{names.WS} {names.WS_LAG}", {}).get("95%", "–")
        done = self.latest.get(f"{names.BATCH} complete 1000", {}).get("Total Request Count", "0")
        return (
            f"users {aggregated.get('User Count', '0')} · HTTP {rps:.1f} req/s · failures {fails:.0f} "
            f"· 1000-prompt batches {done} · socket lag p95 {lag} ms"
        )


def _float(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


def run_load(
    profile: Any,
    *,
    base_url: str | None,
    out: Path,
    processes: int | None = None,
    console: Console | None = None,
    plots: bool = True,
    faults: str | None = None,
    calibrate: bool = True,
    idle_probe: bool = True,
) -> LoadRun:
    """Calibrate the machine, start the target if needed, time uploads on it while it is idle
    (``idle_probe.py``), run Locust with a live progress line, calibrate again, then summarize and plot.
    ``faults`` (else ``BATCHQA_FAULTS`` from the environment) goes to a bundled backend only."""
    console = console or Console(stderr=True)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("locust*"), out / SAMPLES_FILE, out / PROBE_FILE, out / IDLE_FILE]:
        stale.unlink(missing_ok=True)
    faults = os.environ.get(FAULTS_ENV, "") if faults is None else faults
    env = {**profile.backend_env, FAULTS_ENV: faults}
    before = probe() if calibrate else None
    with target(base_url, env=env, log_path=out / "server.log", prefix="batchqa-load-") as (url, server):
        pid = server.process.pid if server and server.process else None
        source = MemorySource(pid=pid, base_url=url)
        command = locust_command(profile, url, out, processes=processes)
        (out / "command.txt").write_text(" ".join(command) + "\n", encoding="utf-8")
        # From before the idle probe: a machine busy while it runs makes the run busy too.
        cpu = CpuShare()
        cpu.sample()
        if idle_probe:
            console.print("idle probe: 50-prompt uploads on the idle target, beside /healthz")
            run_idle_probe(url, out / IDLE_FILE)
        rows_before = _server_rows(url)
        sampler = MemorySampler(source, cpu=cpu)
        sampler.start()
        live = LiveProbe(url, out / PROBE_FILE).start()
        allowed_s = profile.run_time_s + profile.stop_timeout_s
        exit_code = _run_locust(command, out, profile.run_time_s, allowed_s, console, lambda tail: tail.line(names))
        samples = sampler.stop()
        live.stop()
        rows_after = _server_rows(url)
    # Before and after, fastest of both: a neighbour's burst during one probe does not make the machine slow.
    calibration = Calibration.fastest(before, probe()) if before else None
    run = LoadRun(
        out=out,
        profile=asdict(profile),
        target=base_url or "bundled backend",
        started_backend=base_url is None,
        command=command,
        exit_code=exit_code,
        memory_source=source.description if samples else None,
        calibration=calibration.as_dict() if calibration else None,
        faults=faults if base_url is None else "",
    )
    write_memory(out / "memory.csv", samples)
    join_samples(out)
    stats_path = out / "locust.json"
    if not stats_path.exists():
        run.notes.append(f"Locust wrote no stats (exit code {exit_code}); see {out / 'locust.log'}")
        run.write()
        return run
    entries = json.loads(stats_path.read_text(encoding="utf-8"))
    run.metrics = summarize_entries(entries, memory=samples, warmup_s=profile.warmup_s) | cpu.metrics()
    if not samples:
        run.notes.append("server memory: not available (no /proc PID and no process_resident_memory_bytes)")
    if rows_before is not None and rows_after and run.metrics.get("duration_s"):
        run.metrics["server_prompts_per_min"] = (rows_after - rows_before) / run.metrics["duration_s"] * 60
    run.write()
    if plots:
        from utilities.perf.report import write_index, write_load_report

        write_load_report(out)
        if out.parent.resolve() == REPORTS_DIR.resolve():
            write_index(out.parent)
    return run


def _run_locust(
    command: list[str],
    out: Path,
    run_time_s: float,
    allowed_s: float,
    console: Console,
    describe: Callable[[_HistoryTail], str],
) -> int:
    """Run Locust with a progress bar; stop it if it runs ``LOCUST_GRACE_S`` past ``allowed_s`` (its run time and
    the stop timeout it gives users to finish their batch)."""
    tail = _HistoryTail(out / "locust_stats_history.csv")
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TextColumn("{task.fields[line]}"))
    deadline = time.monotonic() + allowed_s + LOCUST_GRACE_S
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with (
        open(out / "locust.log", "w", encoding="utf-8") as log_file,
        Progress(*columns, console=console, transient=False) as progress,
    ):
        task = progress.add_task("locust", total=run_time_s, line="starting")
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
        started = time.monotonic()
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                console.print(
                    f"[red]Locust overran its run time and stop timeout by {LOCUST_GRACE_S:.0f} s and was stopped[/]"
                )
                break
            tail.poll()
            progress.update(task, completed=min(run_time_s, time.monotonic() - started), line=describe(tail))
            time.sleep(1.0)
        tail.poll()
        progress.update(task, completed=run_time_s, line=describe(tail))
    return process.returncode


def join_samples(out: Path) -> Path | None:
    """One ``samples.csv`` from the per-process files the locustfile's sample writer left."""
    parts = sorted(out.glob("locust_samples.*.csv"))
    if not parts:
        return None
    path = out / SAMPLES_FILE
    with open(path, "w", encoding="utf-8", newline="") as joined:
        for number, part in enumerate(parts):
            lines = part.read_text(encoding="utf-8").splitlines(keepends=True)
            joined.writelines(lines if number == 0 else lines[1:])
            part.unlink()
    return path


# CLI

HEADLINE = (
    ("failure_ratio", "failure ratio", "{:.4f}"),
    ("http_rps", "HTTP requests/s", "{:.1f}"),
    ("prompts_per_min", "prompts/min (completed batches)", "{:,.0f}"),
    ("server_prompts_per_min", "prompts/min (server counter)", "{:,.0f}"),
    ("batch_p50_s[1000]", "1000-prompt batch p50 s", "{:.2f}"),
    ("batch_p95_s[1000]", "1000-prompt batch p95 s", "{:.2f}"),
    ("sockets_open_avg", "sockets open (time-weighted mean)", "{:.1f}"),
    ("socket_lag_p95_ms", "socket lag p95 ms", "{:.0f}"),
    ("socket_gap_max_ms", "socket max gap ms", "{:.0f}"),
    ("memory_growth_mb", "server memory growth MiB (after warm-up)", "{:+.1f}"),
    ("memory_peak_mb", "server memory peak MiB", "{:.0f}"),
    ("host_own_cores", "CPU cores used by this run", "{:.2f}"),
    ("host_other_cores", "CPU cores used by other processes meanwhile", "{:.2f}"),
)


def render_summary(run: LoadRun) -> Table:
    table = Table(title=f"load profile {run.profile['name']} against {run.target}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label, fmt in HEADLINE:
        if key in run.metrics:
            table.add_row(label, fmt.format(run.metrics[key]))
    for key in sorted(k for k in run.metrics if k.startswith("http_p95_ms[")):
        table.add_row(escape(f"p95 ms {key[len('http_p95_ms[') : -1]}"), f"{run.metrics[key]:.0f}")
    return table


_TIMESPAN = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def parse_timespan(_ctx: click.Context | None, _param: click.Parameter | None, value: str | None) -> int | None:
    """``90``, ``90s``, ``2m``, ``1h30m`` as seconds."""
    if value is None:
        return None
    match = _TIMESPAN.match(value.strip())
    if not match or not any(match.groups()):
        raise click.BadParameter(f"expected a time span like 90s, 2m or 1h30m, got {value!r}")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@click.command("load")
@click.option("--profile", "profile_name", default="smoke", show_default=True, help="smoke, nightly or soak.")
@click.option("--base-url", envvar="BATCHQA_BASE_URL", default=None, help="Target; default: start the bundled backend.")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Default reports/perf/PROFILE."
)
@click.option("--processes", type=int, default=None, help="Locust worker processes on this machine (distributed).")
@click.option("--run-time", callback=parse_timespan, default=None, help="Override the profile's run time (2m, 90s).")
@click.option("--batch-users", type=click.IntRange(min=0), default=None, help="Override BatchUsers.")
@click.option("--socket-users", type=click.IntRange(min=0), default=None, help="Override SocketUsers.")
@click.option("--mixed-users", type=click.IntRange(min=0), default=None, help="Override MixedUsers.")
@click.option("--plots/--no-plots", default=True, show_default=True, help="Write PNGs and index.html.")
@repeat_option(
    "Run the profile K times in a row into OUT/run-1 ... OUT/run-K; `batchqa gate --run OUT` then judges "
    "the K runs together (a verdict that moves 1/sqrt(K) as much between runs)."
)
@click.option("--dry-run", is_flag=True, help="Print the Locust command line and exit.")
def load_command(
    profile_name: str,
    base_url: str | None,
    out: Path | None,
    processes: int | None,
    run_time: int | None,
    batch_users: int | None,
    socket_users: int | None,
    mixed_users: int | None,
    plots: bool,
    repeat: int,
    dry_run: bool,
) -> None:
    """Run a load profile (Locust, headless) and collect its stats, socket lag/gaps and server memory.

    Exits with Locust's code: 0, or 1 when a download was wrong, too many operations failed or no
    batch completed. Compare the run with its baseline afterwards: ``batchqa gate``.
    """
    known = profiles.PROFILES
    if profile_name not in known:
        raise click.BadParameter(f"unknown profile {profile_name!r}; one of {sorted(known)}", param_hint="--profile")
    profile = known[profile_name].with_overrides(
        run_time_s=run_time, batch_users=batch_users, socket_users=socket_users, mixed_users=mixed_users
    )
    out = out or REPORTS_DIR / profile.name
    if dry_run:
        click.echo(" ".join(locust_command(profile, base_url or "URL", out, processes=processes)))
        return
    console = Console(stderr=True)
    codes = []
    for directory in repeat_directories(out, repeat):
        run = run_load(profile, base_url=base_url, out=directory, processes=processes, console=console, plots=plots)
        console.print(render_summary(run))
        for note in run.notes:
            console.print(f"[yellow]{note}[/]")
        console.print(f"run written to {directory} (summary.json, locust_*.csv, locust.json, index.html)")
        if run.exit_code != 0:
            console.print(f"[red]Locust exited {run.exit_code}[/]; see {directory / 'locust.log'}")
        codes.append(run.exit_code)
    raise SystemExit(next((code for code in codes if code), 0))


def repeat_directories(out: Path, repeat: int) -> list[Path]:
    """Where the runs go: ``out`` itself for one run; ``out/run-1`` ... ``out/run-K`` for a set, after removing
    what an earlier run or set left in ``out`` (a stale summary.json or run-N would join the set the gate reads)."""
    if repeat == 1:
        return [out]
    (out / SUMMARY_FILE).unlink(missing_ok=True)
    for stale in out.glob(f"{REPEAT_PREFIX}*"):
        if stale.is_dir():
            shutil.rmtree(stale)
    return [repeat_directory(out, number) for number in range(1, repeat + 1)]


if __name__ == "__main__":
    load_command()
