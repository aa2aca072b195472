"""``batchqa ws-bench``'s report: the table of points (sockets, memory per socket, lag percentiles, CPU per message),
results.json, and the plot of lag and memory against the socket count."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from utilities.perf.ws_bench_point import Point
from utilities.procs.process_metrics import machine_facts


def _load(load: tuple[float, float] | None) -> str:
    return "–" if load is None else f"{load[0]:.1f}→{load[1]:.1f}"


def render_markdown(points: Sequence[Point], settings: dict[str, Any]) -> str:
    def num(value: float | None, digits: int = 1) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    lines = [
        "| sockets | server | busy core | connected | memory/socket KiB | lag p50 ms | lag p95 ms | lag p99 ms "
        "| lag max ms | server queue p95 ms | delivery p95 ms | server CPU µs/message | max gap s "
        "| terminal received | problems | load avg |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        mem = None if p.memory_per_socket_bytes is None else p.memory_per_socket_bytes / 1024
        lag, queue, delivery = p.lag_ms, p.server_queue_ms, p.delivery_ms
        lines.append(
            f"| {p.sockets} | {p.server} | {'yes' if p.busy_core else 'no'} | {p.connected} | {num(mem)} "
            f"| {num(lag and lag.p50)} "
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
        "Busy core: a CPU burner pinned to the last CPU ran throughout. "
        "Client and server share the machine's CPUs; the load average column (1-minute, before→after) "
        "says how busy it was. "
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
    return [json_path, md_path, plot_points(points, out / "ws-bench.png")]


def plot_points(points: Sequence[Point], path: Path) -> Path:
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
        ax.step(ms, share, where="post", label=f"{p.sockets} sockets, {p.server} (p95 {p95:.0f} ms)")
    ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
    ax.axvline(50, color="red", linestyle="--", linewidth=1, label="aim at 1000 sockets: p95 < 50 ms")
    ax.set_xlabel("fan-out lag, ms (arrival - event_time)")
    ax.set_ylabel("share of messages")
    ax.set_title("progress socket fan-out lag (cumulative)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
