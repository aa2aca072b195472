"""``batchqa ws-bench``: server memory per held progress socket and fan-out lag at N sockets on one batch.

Per point a fresh bundled backend is started, one batch is uploaded and paused, N sockets connect
(asyncio, one client process) and each reads its snapshot; memory per socket is the server's RSS
growth over the second half of the connections (the first half absorbs one-off growth: thread
pool, database connections). Then the batch resumes and every socket records each message's
arrival time.
Lag = arrival time - ``event_time`` (when the server stored the event), for live advancing messages.
The provider is set so events come further apart than the coalescing window: every event is pushed
at once, so the lag is fan-out (bus, encoding, sending, the client reading), not deliberate throttling.
Client and server share this machine's CPUs, so the client's own reading is part of the measured lag.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from utilities.client.api import TERMINAL_STATUSES, BatchApi
from utilities.client.recorders import (
    ADVANCING_TYPES,
    CadenceReport,
    Connection,
    Received,
    message_problems,
    parse_time,
    ws_url,
)
from utilities.client.recorders import percentile as _pct
from utilities.perf.bench import machine_facts
from utilities.procs.backend import BackendProcess

CONNECT_CONCURRENCY = 100
_TERMINAL_MARKERS = tuple(f'"status":"{status}"' for status in TERMINAL_STATUSES)
FD_HEADROOM = 256


def raise_fd_limit(needed: int) -> tuple[int, int]:
    """Raise this process's soft open-files limit to ``needed`` (capped by the hard limit); children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process from /proc (Linux); None elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class Distribution:
    """Milliseconds: p50, p95, p99 and max over ``samples`` values."""

    samples: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of_seconds(cls, values: Sequence[float]) -> Distribution:
        ms = [v * 1000 for v in values]
        return cls(len(ms), _pct(ms, 50), _pct(ms, 95), _pct(ms, 99), max(ms) if ms else None)


@dataclass
class Point:
    """One measured socket count, with one client compression setting."""

    sockets: int
    compression: str = "deflate"
    connected: int = 0
    connect_s: float | None = None
    rss_half_bytes: int | None = None  # server RSS with half the sockets held
    rss_all_bytes: int | None = None  # ... and with all of them
    memory_per_socket_bytes: float | None = None
    lag_ms: Distribution | None = None
    server_queue_ms: Distribution | None = None
    delivery_ms: Distribution | None = None
    max_gap_s: float | None = None
    terminal_received: int = 0
    messages: int = 0
    load_average: tuple[float, float] | None = None  # 1-minute load before and after: others share the CPUs
    streamed: int = 0  # messages the sockets received after the resume
    server_cpu_s: float | None = None  # server CPU time from the resume until every socket saw the end
    problems: list[str] = field(default_factory=list)
    lags_s: list[float] = field(default_factory=list, repr=False)

    @property
    def cpu_us_per_message(self) -> float | None:
        """Server CPU per message delivered: the fan-out cost of one socket, whatever else runs here."""
        if self.server_cpu_s is None or not self.streamed:
            return None
        return self.server_cpu_s / self.streamed * 1e6

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("lags_s")
        body["cpu_us_per_message"] = self.cpu_us_per_message
        return body


@dataclass
class _Socket:
    index: int
    ws: ClientConnection | None = None
    opened_at: float = 0.0
    opened_wall: float = 0.0
    raw: list[tuple[float, float, str]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None
    error: str | None = None


async def _open(
    url: str, headers: dict[str, str], compression: str | None, gate: asyncio.Semaphore, s: _Socket
) -> None:
    """Connect, wait for the snapshot, then keep reading in the background (so arrival stamps stay true)."""
    async with gate:
        try:
            s.ws = await connect(url, additional_headers=headers, compression=compression, open_timeout=60)
            s.opened_at, s.opened_wall = time.monotonic(), time.time()
            raw = await s.ws.recv()
            s.raw.append((time.monotonic(), time.time(), str(raw)))
        except (OSError, TimeoutError, ConnectionClosed) as exc:
            s.error = f"connect: {type(exc).__name__}: {exc}"
            return
    s.reader = asyncio.create_task(_read(s))


async def _read(s: _Socket) -> None:
    """Stamp every message on arrival until a terminal status; parsing waits until the run is over."""
    assert s.ws is not None
    try:
        async for raw in s.ws:
            s.raw.append((time.monotonic(), time.time(), str(raw)))
            if any(marker in raw for marker in _TERMINAL_MARKERS):
                return
    except ConnectionClosed as exc:
        s.error = f"closed early: {exc}"


async def _connect_all(url: str, headers: dict[str, str], compression: str | None, sockets: list[_Socket]) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    await asyncio.gather(*(_open(url, headers, compression, gate, s) for s in sockets))


async def _measure(
    point: Point, server: BackendProcess | None, url: str, api: BatchApi, batch_id: str, compression: str | None
) -> list[_Socket]:
    """Hold ``point.sockets`` sockets (RSS at half and at all of them), resume the batch, read to the end."""
    headers = {"Authorization": f"Bearer {api.token}"}
    socket_url = ws_url(url, batch_id)
    pid = server.process.pid if server is not None and server.process is not None else None
    sockets = [_Socket(i) for i in range(point.sockets)]
    half = len(sockets) // 2
    started = time.monotonic()
    # The first half also absorbs one-off growth (thread pool, database connections and caches), so
    # memory per socket is the growth over the second half only.
    await _connect_all(socket_url, headers, compression, sockets[:half])
    point.rss_half_bytes = rss_bytes(pid) if pid else None
    await _connect_all(socket_url, headers, compression, sockets[half:])
    point.connect_s = time.monotonic() - started
    point.rss_all_bytes = rss_bytes(pid) if pid else None
    point.connected = sum(1 for s in sockets if s.reader is not None)
    second_half = sum(1 for s in sockets[half:] if s.reader is not None)
    if point.rss_half_bytes and point.rss_all_bytes and second_half:
        point.memory_per_socket_bytes = (point.rss_all_bytes - point.rss_half_bytes) / second_half

    readers = [s.reader for s in sockets if s.reader is not None]
    before = {s.index: len(s.raw) for s in sockets}
    cpu_before = cpu_seconds(pid) if pid else None
    await asyncio.to_thread(api.resume, batch_id)
    _done, pending = await asyncio.wait(readers, timeout=120) if readers else (set(), set())
    cpu_after = cpu_seconds(pid) if pid else None
    point.streamed = sum(len(s.raw) - before[s.index] for s in sockets)
    if cpu_before is not None and cpu_after is not None:
        point.server_cpu_s = cpu_after - cpu_before
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await asyncio.gather(*(s.ws.close() for s in sockets if s.ws is not None), return_exceptions=True)
    return sockets


def _analyse(point: Point, sockets: Sequence[_Socket], batch_id: str) -> None:
    lags, queue, delivery, gaps = [], [], [], []
    for s in sockets:
        if s.error:
            point.problems.append(f"socket {s.index}: {s.error}")
        received = []
        for at, wall, raw in s.raw:
            message = json.loads(raw)
            received.append(Received(message, at, wall, 0, tuple(message_problems(message))))
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
    sockets: int, *, rows: int, latency_ms: float, compression: str | None, base_url: str | None, out: Path
) -> Point:
    """Measure one socket count against a fresh bundled backend (or ``base_url`` as configured)."""
    point = Point(sockets, compression=compression or "none")
    load_before = os.getloadavg()[0]
    env = {
        "BATCHQA_PROVIDER_LATENCY_MS": f"{latency_ms:g}",
        "BATCHQA_PROVIDER_BATCH_SIZE": "1",
        "BATCHQA_WORKER_CONCURRENCY": "1",
        "BATCHQA_LOG_LEVEL": "WARNING",  # uvicorn logs two lines per socket at INFO
    }
    with tempfile.TemporaryDirectory(prefix="batchqa-ws-bench-") as data_dir:
        server = None
        if base_url is None:
            server = BackendProcess(Path(data_dir), env=env, log_path=out / f"server-{sockets}.log")
            base_url = server.start()
        try:
            with BatchApi.new_user(base_url, "ws-bench") as api:
                batch_id = api.upload(text="\n".join(f"Describe benchmark topic {i}" for i in range(rows)))["batch_id"]
                # A row claimed before the pause still finishes; let it, so its event is not
                # held by the coalescing window right after the resume (throttling, not fan-out).
                if api.pause(batch_id)["started_at"] is not None:
                    api.wait_for_progress(batch_id, 1)
                measured = asyncio.run(_measure(point, server, base_url, api, batch_id, compression))
                _analyse(point, measured, batch_id)
        finally:
            if server is not None:
                server.stop()
    point.load_average = (load_before, os.getloadavg()[0])
    return point


def _load(load: tuple[float, float] | None) -> str:
    return "–" if load is None else f"{load[0]:.1f}→{load[1]:.1f}"


def render_markdown(points: Sequence[Point], settings: dict[str, Any]) -> str:
    def num(value: float | None, digits: int = 1) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    lines = [
        "| sockets | compression | connected | memory/socket KiB | lag p50 ms | lag p95 ms | lag p99 ms | lag max ms "
        "| server queue p95 ms | delivery p95 ms | server CPU µs/message | max gap s | terminal received "
        "| problems | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        mem = None if p.memory_per_socket_bytes is None else p.memory_per_socket_bytes / 1024
        lag, queue, delivery = p.lag_ms, p.server_queue_ms, p.delivery_ms
        lines.append(
            f"| {p.sockets} | {p.compression} | {p.connected} | {num(mem)} | {num(lag and lag.p50)} "
            f"| {num(lag and lag.p95)} | {num(lag and lag.p99)} | {num(lag and lag.max)} | {num(queue and queue.p95)} "
            f"| {num(delivery and delivery.p95)} | {num(p.cpu_us_per_message)} | {num(p.max_gap_s, 2)} "
            f"| {p.terminal_received}/{p.connected} "
            f"| {len(p.problems)} | {_load(p.load_average)} |"
        )
    lines += [
        "",
        f"One batch of {settings['rows']} rows, one provider call per row of {settings['latency_ms']:g} ms, so "
        "events come further apart than the 250 ms coalescing window and each is pushed at once. "
        "Lag = client arrival - event_time; server queue = server_time - event_time; delivery = arrival - "
        "server_time. Memory/socket = server RSS growth over the second half of the connections. "
        "Compression: permessage-deflate as browsers offer it (the server accepts it), or none. "
        "Client and server share the machine's CPUs; the load average column says how busy it was. "
        "Server CPU per message (CPU time from resume to the last terminal event / messages delivered) "
        "does not depend on that load: N sockets x that cost is the time one event takes to reach all of "
        "them on an otherwise idle core.",
    ]
    return "\n".join(lines) + "\n"


def write_reports(points: Sequence[Point], settings: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_facts()
    json_path, md_path = out / "ws-bench.json", out / "ws-bench.md"
    document = {"settings": settings, "machine": machine, "points": [p.as_dict() for p in points]}
    json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(
        "# Progress socket benchmark: memory per socket and fan-out lag\n\n"
        f"{machine['platform']}, Python {machine['python']}, {machine['cpu_count']} CPUs; {settings['at']}.\n\n"
        + render_markdown(points, settings),
        encoding="utf-8",
    )
    return [json_path, md_path, _plot(points, out / "ws-bench.png")]


def _plot(points: Sequence[Point], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in points:
        if not p.lags_s:
            continue
        ms = sorted(v * 1000 for v in p.lags_s)
        share = [(i + 1) / len(ms) for i in range(len(ms))]
        p95 = p.lag_ms.p95 if p.lag_ms and p.lag_ms.p95 is not None else 0.0
        ax.step(ms, share, where="post", label=f"{p.sockets} sockets, {p.compression} (p95 {p95:.0f} ms)")
    ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
    ax.axvline(100, color="red", linestyle="--", linewidth=1, label="aim: p95 < 100 ms")
    ax.set_xlabel("fan-out lag, ms (arrival - event_time)")
    ax.set_ylabel("share of messages")
    ax.set_title("progress socket fan-out lag (cumulative)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _counts(_ctx: click.Context, _param: click.Parameter, value: str) -> list[int]:
    try:
        counts = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not counts or min(counts) < 1:
        raise click.BadParameter("give at least one socket count, each at least 1")
    return counts


def _modes(value: str) -> list[str]:
    modes = [part.strip() for part in value.split(",") if part.strip()]
    if not modes or set(modes) - {"deflate", "none"}:
        raise click.BadParameter(f"expected deflate and/or none, got {value!r}")
    return modes


@click.command("ws-bench")
@click.option("--sockets", default="100,1000", callback=_counts, show_default=True, help="Socket counts to measure.")
@click.option("--rows", type=click.IntRange(min=2), default=20, show_default=True, help="Rows in the batch.")
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=400.0,
    show_default=True,
    help="Provider latency per row, i.e. the spacing of events.",
)
@click.option(
    "--compression",
    default="deflate,none",
    callback=lambda _c, _p, v: _modes(v),
    show_default=True,
    help="Client compression modes to measure: deflate (as browsers), none.",
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
    compression: list[str],
    base_url: str | None,
    out: Path,
    max_p95_ms: float | None,
) -> None:
    """Memory per held progress socket and p95 fan-out lag at each socket count; writes reports/ws-bench/."""
    out.mkdir(parents=True, exist_ok=True)
    limit = raise_fd_limit(2 * max(sockets) + FD_HEADROOM)  # client and (inherited) server both hold N
    points = []
    for mode in compression:
        for count in sockets:
            click.echo(f"measuring {count} sockets, compression {mode} ...", err=True)
            point = run_point(
                count,
                rows=rows,
                latency_ms=latency_ms,
                compression=None if mode == "none" else mode,
                base_url=base_url,
                out=out,
            )
            points.append(point)
    settings = {
        "sockets": sockets,
        "rows": rows,
        "latency_ms": latency_ms,
        "compression": compression,
        "base_url": base_url,
        "open_files_limit": list(limit),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    written = write_reports(points, settings, out)
    click.echo(render_markdown(points, settings))
    click.echo("wrote " + ", ".join(str(p) for p in written))
    failures = [f"{p.sockets} sockets ({p.compression}): {problem}" for p in points for problem in p.problems]
    if max_p95_ms is not None:
        failures += [
            f"{p.sockets} sockets ({p.compression}): p95 lag {p.lag_ms.p95:.1f} ms > {max_p95_ms:g} ms"
            for p in points
            if p.lag_ms and p.lag_ms.p95 is not None and p.lag_ms.p95 > max_p95_ms
        ]
    if failures:
        click.echo(f"{len(failures)} problem(s):\n  " + "\n  ".join(failures[:50]), err=True)
        raise SystemExit(1)


if __name__ == "__main__":
    ws_bench_command()
