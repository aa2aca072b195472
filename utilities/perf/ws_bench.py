"""``batchqa ws-bench``: server memory per held progress socket and fan-out lag at N sockets on one batch.

Per point a fresh bundled backend is started, one batch is uploaded and paused, N sockets connect
(one client process) and each reads its snapshot; memory per socket is the server's RSS growth over
the second half of the connections (the first half absorbs one-off growth: thread pool, database
connections). Then the batch resumes and every socket stamps each message's arrival time.
Lag = arrival time - ``event_time`` (when the server stored the event), for live advancing messages.
The provider is set so events come further apart than the coalescing window: every event is pushed
at once, so the lag is fan-out (bus, encoding, sending, the client reading), not deliberate throttling.

Client and server share this machine's CPUs, so the client's own reading is part of the measured
lag. The client is therefore a minimal one (``BenchSocket``: the handshake, then frames parsed in
the protocol callback, no task per socket), so that at thousands of sockets the figure is the
server's, not the client library's. Every recording is still checked with ``CadenceReport`` (seq
coverage, counts) and a sample of the messages against the JSON Schemas. ``--busy-core`` runs a
CPU burner pinned to the last CPU for the whole run; ``--compare-with`` measures the server of
another checkout side by side (before/after in one run, under the same load).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from utilities.client.api import BatchApi
from utilities.client.cadence_report import CadenceReport
from utilities.client.progress_messages import ADVANCING_TYPES, Connection, Received, message_problems, parse_time
from utilities.perf.ws_bench_point import Distribution, Point
from utilities.perf.ws_bench_report import render_markdown, write_reports
from utilities.perf.ws_bench_socket import connect_all
from utilities.procs.backend import BackendProcess
from utilities.procs.process_metrics import cpu_seconds, rss_bytes
from utilities.procs.target import target

FD_HEADROOM = 256
SCHEMA_SAMPLE_SOCKETS = 20  # sockets whose every message is also checked against its JSON Schema


def raise_fd_limit(needed: int) -> tuple[int, int]:
    """Raise this process's soft open-files limit to ``needed`` (capped by the hard limit); children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


async def _measure(point: Point, server: BackendProcess | None, url: str, api: BatchApi, batch_id: str) -> list[Any]:
    """Hold ``point.sockets`` sockets (RSS at half and at all of them), resume the batch, read to the end."""
    assert api.token is not None
    pid = server.process.pid if server is not None and server.process is not None else None
    half = point.sockets // 2
    started = time.monotonic()
    # The first half also absorbs one-off growth (thread pool, database connections and caches), so
    # memory per socket is the growth over the second half only.
    sockets = await connect_all(url, batch_id, api.token, range(half))
    point.rss_half_bytes = rss_bytes(pid) if pid else None
    second = await connect_all(url, batch_id, api.token, range(half, point.sockets))
    sockets += second
    point.connect_s = time.monotonic() - started
    point.rss_all_bytes = rss_bytes(pid) if pid else None
    live = [s for s in sockets if s.error is None]
    point.connected = len(live)
    second_half = sum(1 for s in second if s.error is None)
    if point.rss_half_bytes and point.rss_all_bytes and second_half:
        point.memory_per_socket_bytes = (point.rss_all_bytes - point.rss_half_bytes) / second_half

    before = {s.index: len(s.raw) for s in sockets}
    cpu_before = cpu_seconds(pid) if pid else None
    await asyncio.to_thread(api.resume, batch_id)
    waiting = [s.done for s in live]
    _done, pending = await asyncio.wait(waiting, timeout=120) if waiting else (set(), set())
    cpu_after = cpu_seconds(pid) if pid else None
    point.streamed = sum(len(s.raw) - before[s.index] for s in sockets)
    if cpu_before is not None and cpu_after is not None:
        point.server_cpu_s = cpu_after - cpu_before
    for s in live:
        if not s.done.done():
            s.error = s.error or "no terminal status within 120 s"
        s.close()
    del pending
    return sockets


def _analyse(point: Point, sockets: Sequence[Any], batch_id: str) -> None:
    lags, queue, delivery, gaps = [], [], [], []
    for s in sockets:
        if s.error:
            point.problems.append(f"socket {s.index}: {s.error}")
        if not s.raw:
            continue
        received = []
        for at, wall, raw in s.raw:
            message = json.loads(raw)
            checked = message_problems(message) if s.index < SCHEMA_SAMPLE_SOCKETS else ()
            received.append(Received(message, at, wall, 0, tuple(checked)))
            event, sent = parse_time(message.get("event_time")), parse_time(message.get("server_time"))
            live = event is not None and event >= s.opened_wall  # not history from before the socket opened
            if message.get("type") in ADVANCING_TYPES and live and sent is not None:
                lags.append(wall - event)
                queue.append(sent - event)
                delivery.append(wall - sent)
        report = CadenceReport.build(
            received, [Connection(0, s.opened_at, s.opened_wall)], source="ws-bench", batch_id=batch_id
        )
        point.messages += report.messages
        point.terminal_received += report.terminal_status is not None
        if report.gap_max_s is not None:
            gaps.append(report.gap_max_s)
        point.problems.extend(f"socket {s.index}: {p}" for p in report.problems())
    point.lags_s = lags
    point.lag_ms = Distribution.of_seconds(lags)
    point.server_queue_ms = Distribution.of_seconds(queue)
    point.delivery_ms = Distribution.of_seconds(delivery)
    point.max_gap_s = max(gaps) if gaps else None


def run_point(
    sockets: int,
    *,
    rows: int,
    latency_ms: float,
    base_url: str | None,
    out: Path,
    server_path: Path | None = None,
    busy_core: bool = False,
) -> Point:
    """Measure one socket count against a fresh bundled backend (of ``server_path``, if given) or ``base_url``."""
    point = Point(sockets, server=server_path.name if server_path else "this checkout", busy_core=busy_core)
    load_before = os.getloadavg()[0]
    env = {
        "BATCHQA_PROVIDER_LATENCY_MS": f"{latency_ms:g}",
        "BATCHQA_PROVIDER_BATCH_SIZE": "1",
        "BATCHQA_WORKER_CONCURRENCY": "1",
        "BATCHQA_LOG_LEVEL": "WARNING",  # uvicorn logs two lines per socket at INFO
    }
    if server_path is not None:
        # That checkout's reference_backend is imported first; PYTHONSAFEPATH keeps ``-m`` from putting
        # the current directory (this checkout) ahead of it.
        env.update(PYTHONPATH=str(server_path), PYTHONSAFEPATH="1")
    log_path = out / f"server-{point.server.replace(' ', '-')}-{sockets}.log"
    with (
        target(base_url, env=env, log_path=log_path, prefix="batchqa-ws-bench-") as (url, server),
        BatchApi.new_user(url, "ws-bench") as api,
    ):
        batch_id = api.upload(text="\n".join(f"Describe benchmark topic {i}" for i in range(rows)))["batch_id"]
        # A row claimed before the pause still finishes; let it, so its event is not
        # held by the coalescing window right after the resume (throttling, not fan-out).
        if api.pause(batch_id)["started_at"] is not None:
            api.wait_for_progress(batch_id, 1)
        measured = asyncio.run(_measure(point, server, url, api, batch_id))
        _analyse(point, measured, batch_id)
    point.load_average = (load_before, os.getloadavg()[0])
    return point


@contextmanager
def cpu_burner(enabled: bool) -> Iterator[int | None]:
    """A process spinning on the last CPU while the block runs (its pid), so one core is busy throughout."""
    if not enabled:
        yield None
        return
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        if hasattr(os, "sched_setaffinity") and (cpus := sorted(os.sched_getaffinity(0))):
            os.sched_setaffinity(burner.pid, {cpus[-1]})
        yield burner.pid
    finally:
        burner.kill()
        burner.wait()


def _counts(_ctx: click.Context, _param: click.Parameter, value: str) -> list[int]:
    try:
        counts = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not counts or min(counts) < 1:
        raise click.BadParameter("give at least one socket count, each at least 1")
    return counts


@click.command("ws-bench")
@click.option(
    "--sockets", default="100,1000,3000,5000", callback=_counts, show_default=True, help="Socket counts to measure."
)
@click.option("--rows", type=click.IntRange(min=2), default=20, show_default=True, help="Rows in the batch.")
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=400.0,
    show_default=True,
    help="Provider latency per row, i.e. the spacing of events.",
)
@click.option("--busy-core", is_flag=True, help="Run a CPU burner pinned to the last CPU during every point.")
@click.option(
    "--compare-with",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Also measure the backend of this checkout (e.g. a worktree of main), each point side by side.",
)
@click.option("--base-url", envvar="BATCHQA_BASE_URL", default=None, help="Measure this target (no memory figure).")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports/ws-bench"), show_default=True
)
@click.option("--max-p95-ms", type=click.FloatRange(min=0), default=None, help="Exit 1 if any point's p95 is above.")
def ws_bench_command(
    sockets: list[int],
    rows: int,
    latency_ms: float,
    busy_core: bool,
    compare_with: Path | None,
    base_url: str | None,
    out: Path,
    max_p95_ms: float | None,
) -> None:
    """Memory per held progress socket and p95 fan-out lag at each socket count; writes reports/ws-bench/."""
    if compare_with is not None and base_url is not None:
        raise click.UsageError("--compare-with starts both backends itself; it cannot be used with --base-url")
    if compare_with is not None and not (compare_with / "reference_backend").is_dir():
        raise click.BadParameter(f"{compare_with} has no reference_backend/", param_hint="--compare-with")
    out.mkdir(parents=True, exist_ok=True)
    limit = raise_fd_limit(2 * max(sockets) + FD_HEADROOM)  # client and (inherited) server both hold N
    servers: list[Path | None] = [None] if compare_with is None else [compare_with.resolve(), None]
    points = []
    with cpu_burner(busy_core):
        for count in sockets:
            for server_path in servers:
                label = server_path.name if server_path else "this checkout"
                click.echo(f"measuring {count} sockets ({label}) ...", err=True)
                try:
                    point = run_point(
                        count,
                        rows=rows,
                        latency_ms=latency_ms,
                        base_url=base_url,
                        out=out,
                        server_path=server_path,
                        busy_core=busy_core,
                    )
                except Exception as exc:  # a server that cannot cope is a result, and the other points still run
                    point = Point(count, server=label, busy_core=busy_core)
                    point.problems.append(f"the run failed: {type(exc).__name__}: {exc}")
                    point.load_average = (os.getloadavg()[0], os.getloadavg()[0])
                points.append(point)
    settings = {
        "sockets": sockets,
        "rows": rows,
        "latency_ms": latency_ms,
        "busy_core": busy_core,
        "compare_with": str(compare_with) if compare_with else None,
        "base_url": base_url,
        "open_files_limit": list(limit),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    written = write_reports(points, settings, out)
    click.echo(render_markdown(points, settings))
    click.echo("wrote " + ", ".join(str(p) for p in written))
    failures = [f"{p.sockets} sockets ({p.server}): {problem}" for p in points for problem in p.problems]
    if max_p95_ms is not None:
        failures += [
            f"{p.sockets} sockets ({p.server}): p95 lag {p.lag_ms.p95:.1f} ms > {max_p95_ms:g} ms"
            for p in points
            if p.lag_ms and p.lag_ms.p95 is not None and p.lag_ms.p95 > max_p95_ms
        ]
    if failures:
        click.echo(f"{len(failures)} problem(s):\n  " + "\n  ".join(failures[:50]), err=True)
        raise SystemExit(1)


if __name__ == "__main__":
    ws_bench_command()
