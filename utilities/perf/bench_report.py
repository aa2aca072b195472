"""``batchqa bench``'s report: the markdown table (client- and server-side times against the ideal schedule),
results.json and the plot of time against batch size."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from utilities.perf.batch_timing import POLL_INTERVAL_S, Run, Summary


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
        written.append(plot_summaries(report.summaries, out / "bench.png"))
    except ImportError:
        return written, "matplotlib is not installed: no bench.png"
    return written, None


def plot_summaries(summaries: Sequence[Summary], path: Path) -> Path:
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
