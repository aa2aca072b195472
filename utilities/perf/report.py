"""Plots (PNG) and an HTML page for a ``batchqa load`` run or a ``batchqa scaling`` run."""

from __future__ import annotations

import csv
import html
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from utilities.perf.names import HTTP_METHODS
from utilities.perf.server_memory import MIB

log = logging.getLogger(__name__)

ROLLING_S = 10


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _num(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


# Load runs


def plot_latency_over_time(history: list[dict[str, str]], path: Path) -> Path | None:
    """p50 and p95 of each HTTP endpoint over time (Locust's 10-second sliding window)."""
    series: dict[str, list[tuple[float, float | None, float | None]]] = defaultdict(list)
    for row in history:
        if row.get("Type") in HTTP_METHODS and (t := _num(row.get("Timestamp"))) is not None:
            series[f"{row['Type']} {row['Name']}"].append((t, _num(row.get("50%")), _num(row.get("95%"))))
    if not series:
        return None
    start = min(points[0][0] for points in series.values())
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, points in sorted(series.items()):
        xs = [t - start for t, _, _ in points]
        for ax, index in ((axes[0], 1), (axes[1], 2)):
            ax.plot(xs, [p[index] for p in points], label=name, linewidth=1.2)
    for ax, label in zip(axes, ("p50", "p95"), strict=True):
        ax.set_yscale("log")
        ax.set_ylabel(f"{label} ms (log)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_title("HTTP latency percentiles over time (10 s window)")
    axes[1].set_xlabel("seconds since start")
    axes[0].legend(fontsize="x-small", ncol=2)
    return _save(fig, path)


def _per_second(entries: list[dict[str, Any]], predicate: Any, weight: Any = None) -> dict[int, float]:
    counts: dict[int, float] = defaultdict(float)
    for entry in entries:
        if predicate(entry):
            factor = weight(entry) if weight else 1
            for second, n in entry["num_reqs_per_sec"].items():
                counts[int(second)] += n * factor
    return counts


def _rolling(counts: dict[int, float], start: int, end: int, window: int) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for second in range(start, end + 1):
        total = sum(counts.get(s, 0.0) for s in range(second - window + 1, second + 1))
        xs.append(second - start)
        ys.append(total / min(window, second - start + 1))
    return xs, ys


def plot_gap_histogram(entries: list[dict[str, Any]], path: Path) -> Path | None:
    """How long sockets waited between two messages (Locust's rounded buckets)."""
    gap = next((e for e in entries if e["method"] == "WS" and e["name"] == "gap"), None)
    if not gap or not gap["response_times"]:
        return None
    points = sorted((float(k), n) for k, n in gap["response_times"].items())
    edges = [0, 50, 100, 200, 300, 500, 750, 1000, 1250, 1500, 2000, 3000, 5000, 10000]
    bins = [0] * (len(edges) - 1)
    for value, count in points:
        for i in range(len(bins)):
            if edges[i] <= value < edges[i + 1] or (i == len(bins) - 1 and value >= edges[-1]):
                bins[i] += count
                break
    fig, ax = plt.subplots(figsize=(9, 4.5))
    labels = [f"{edges[i]}–{edges[i + 1]}" for i in range(len(bins))]
    ax.bar(range(len(bins)), bins, color="#4878a8")
    ax.set_xticks(range(len(bins)), labels, rotation=45, ha="right", fontsize="small")
    ax.set_yscale("log")
    ax.set_xlabel("gap between consecutive socket messages, ms")
    ax.set_ylabel("messages (log)")
    ax.set_title(f"progress gaps: {gap['num_requests']} messages, max {gap['max_response_time']:.0f} ms")
    ax.axvline(edges.index(2000) - 0.5, color="red", linestyle="--", linewidth=1, label="contract: no silence > 2 s")
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_memory(samples: Sequence[tuple[float, float]], path: Path, *, warmup_s: float | None = None) -> Path | None:
    """Server RSS (MiB) over time, with the end of warm-up marked."""
    if not samples:
        return None
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot([t for t, _ in samples], [v / MIB for _, v in samples], color="#8a4f9e")
    if warmup_s:
        ax.axvline(warmup_s, color="grey", linestyle="--", linewidth=1, label="end of warm-up")
        ax.legend(fontsize="small")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("RSS MiB")
    ax.set_title("server memory over time")
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_completion_by_size(
    points: dict[int, Sequence[float]],
    path: Path,
    *,
    fit: tuple[float, float, float] | None = None,
    line: dict[int, float] | None = None,
    line_label: str = "median",
    title: str = "",
) -> Path | None:
    """Completion time against batch size: every run, one summary line (the median unless ``line``
    is given), and the linear fit if given."""
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    sizes = sorted(points)
    for size in sizes:
        ax.scatter([size] * len(points[size]), points[size], color="#4878a8", alpha=0.5, s=18)
    summary = [line[s] for s in sizes] if line else [sorted(points[s])[len(points[s]) // 2] for s in sizes]
    ax.plot(sizes, summary, marker="o", color="#4878a8", label=line_label)
    if fit:
        slope, intercept, r2 = fit
        xs = [0, max(sizes)]
        ax.plot(xs, [intercept + slope * x for x in xs], "--", color="#c44e52", label=f"fit: R² = {r2:.4f}")
    ax.set_xlabel("prompts in the batch")
    ax.set_ylabel("seconds")
    ax.set_title(title or "batch completion time by size")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def _history_by_second(entries: list[dict[str, Any]]) -> tuple[int, int]:
    seconds = [int(s) for e in entries for s in e["num_reqs_per_sec"]]
    return (min(seconds), max(seconds)) if seconds else (0, 0)


def write_load_report(run_dir: Path) -> Path:
    """Plots and index.html for a ``batchqa load`` run directory."""
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    entries = json.loads((run_dir / "locust.json").read_text(encoding="utf-8"))
    history = _read_csv(run_dir / "locust_stats_history.csv")
    memory = [(float(r["elapsed_s"]), float(r["rss_bytes"])) for r in _read_csv(run_dir / "memory.csv")]
    completion: dict[int, list[float]] = {}
    for entry in entries:
        if entry["method"] == "BATCH" and entry["name"].startswith("complete "):
            size = int(entry["name"].split()[1])
            completion[size] = [float(k) / 1000 for k, n in entry["response_times"].items() for _ in range(n)]
    images = [
        plot_latency_over_time(history, run_dir / "latency.png"),
        plot_throughput(entries, run_dir / "throughput.png"),
        plot_completion_by_size(completion, run_dir / "completion.png", title="batch completion time by size"),
        plot_gap_histogram(entries, run_dir / "gaps.png"),
        plot_memory(memory, run_dir / "memory.png", warmup_s=summary["profile"].get("warmup_s")),
    ]
    notes = list(summary.get("notes", []))
    if summary.get("memory_source"):
        notes.append(f"Server memory: {summary['memory_source']}.")
    if calibration := summary.get("calibration"):
        parts = ", ".join(f"{k} {v:g}" for k, v in calibration.items())
        notes.append(f"Calibration probe (fastest rounds before and after the load): {parts}.")
    if summary.get("faults"):
        notes.append(f"FAULTS ON in the bundled backend: {summary['faults']}.")
    links = [("Locust's own report", "locust.html"), ("stats CSV", "locust_stats.csv"), ("summary", "summary.json")]
    if (run_dir.parent / "trend" / "index.html").exists():
        links.append(("trend over the run history (change points)", "../trend/index.html"))
    page = _page(
        f"Load run: {summary['profile']['name']}",
        [
            f"Target: {summary['target']}; at {summary['at']}; Locust exit code {summary['exit_code']}.",
            summary["profile"].get("description", ""),
            *notes,
        ],
        summary["metrics"],
        [p for p in images if p],
        links=links,
    )
    path = run_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def plot_throughput(entries: list[dict[str, Any]], path: Path) -> Path | None:
    """HTTP requests per second and prompts per minute (completed batches), 10-second rolling means."""
    start, end = _history_by_second(entries)
    if end <= start:
        return None
    http = _per_second(entries, lambda e: e["method"] in HTTP_METHODS)

    def is_batch(entry: dict[str, Any]) -> bool:
        return entry["method"] == "BATCH" and entry["name"].startswith("complete ")

    prompts = _per_second(entries, is_batch, lambda e: int(e["name"].split()[1]))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    xs, ys = _rolling(http, start, end, ROLLING_S)
    ax.plot(xs, ys, color="#4878a8", label="HTTP requests/s")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("HTTP requests/s")
    twin = ax.twinx()
    xs, ys = _rolling(prompts, start, end, ROLLING_S)
    twin.plot(xs, [y * 60 for y in ys], color="#c44e52", label="prompts/min (completed batches)")
    twin.set_ylabel("prompts/min")
    ax.set_title(f"throughput ({ROLLING_S} s rolling mean)")
    lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize="small", loc="upper left")
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


# HTML


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return html.escape(str(value))


def _page(
    title: str,
    lines: Sequence[str],
    metrics: dict[str, Any],
    images: Sequence[Path],
    *,
    links: Sequence[tuple[str, str]] = (),
    extra_html: str = "",
) -> str:
    rows = "\n".join(
        f"<tr><td>{html.escape(k)}</td><td class=num>{_fmt(v)}</td></tr>" for k, v in sorted(metrics.items())
    )
    figures = "\n".join(f'<figure><img src="{p.name}" alt="{html.escape(p.stem)}"></figure>' for p in images)
    link_html = " · ".join(f'<a href="{href}">{html.escape(text)}</a>' for text, href in links)
    paragraphs = "\n".join(f"<p>{html.escape(line)}</p>" for line in lines if line)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9rem; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 0.2rem 0.8rem; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
figure {{ margin: 1.5rem 0; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
{paragraphs}
<p>{link_html}</p>
{extra_html}
{figures}
<h2>Metrics</h2>
<table><tr><th>metric</th><th>value</th></tr>
{rows}
</table>
</body></html>
"""


def write_scaling_report(
    out: Path,
    *,
    points: dict[int, Sequence[float]],
    fit: tuple[float, float, float] | None,
    line: dict[int, float],
    line_label: str,
    memory_by_batch: Sequence[tuple[int, float]],
    memory_over_time: Sequence[tuple[float, float]],
    metrics: dict[str, Any],
    lines: Sequence[str],
    warmup_batches: int,
) -> Path:
    """Plots and index.html for ``batchqa scaling``."""
    images = [
        plot_completion_by_size(
            points,
            out / "scaling.png",
            fit=fit,
            line=line,
            line_label=line_label,
            title="upload → completed → downloaded, against batch size",
        )
    ]
    if memory_by_batch:
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.plot([b for b, _ in memory_by_batch], [v / MIB for _, v in memory_by_batch], marker="o", color="#8a4f9e")
        ax.axvline(warmup_batches + 0.5, color="grey", linestyle="--", linewidth=1, label="end of warm-up")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("1000-prompt batches completed")
        ax.set_ylabel("RSS MiB")
        ax.set_title("server memory after each batch")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        images.append(_save(fig, out / "leak.png"))
    images.append(plot_memory(memory_over_time, out / "memory.png"))
    page = _page(
        "Scaling and leak benchmark", lines, metrics, [p for p in images if p], links=[("data", "summary.json")]
    )
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_index(root: Path) -> Path:
    """``reports/perf/index.html``: a link to every run directory's page under ``root``."""
    items = []
    for page in sorted(root.glob("*/index.html")):
        summary_path = page.parent / "summary.json"
        at = json.loads(summary_path.read_text(encoding="utf-8")).get("at", "") if summary_path.exists() else ""
        items.append(
            f'<li><a href="{page.parent.name}/index.html">{html.escape(page.parent.name)}</a> {html.escape(at)}</li>'
        )
    body = "\n".join(items) or "<li>no runs yet</li>"
    path = root / "index.html"
    path.write_text(
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>batchqa performance runs</title></head>"
        f"<body><h1>batchqa performance runs</h1><ul>{body}</ul></body></html>\n",
        encoding="utf-8",
    )
    return path


@click.command("perf-report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def perf_report_command(run_dir: Path) -> None:
    """Redraw the plots and index.html of a ``batchqa load`` run directory."""
    click.echo(write_load_report(run_dir))


if __name__ == "__main__":
    perf_report_command()
