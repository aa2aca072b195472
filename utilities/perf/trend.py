"""``batchqa trend``: change points per metric over the gate's run history (PELT from ``ruptures``), plotted."""

from __future__ import annotations

import html
import itertools
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
import ruptures

from utilities.perf.gate import wide_console
from utilities.perf.gate_history import DEFAULT_HISTORY, read_history

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("reports/perf/trend")
NIGHTLY_HISTORY = Path("reports/perf/nightly/history.jsonl")
MIN_POINTS = 6  # fewer runs and a change point cannot be told from a single odd run
MIN_SEGMENT = 2
PENALTY_SCALE = 8.0  # times σ²·ln(n): with every run a candidate split, BIC's 2 finds steps in pure noise


@dataclass
class MetricTrend:
    """One metric of one profile over its runs; ``changes`` are indices where a new level starts."""

    profile: str
    metric: str
    values: list[float]
    labels: list[str]
    changes: list[int] = field(default_factory=list)

    def shifts(self) -> list[tuple[int, float | None]]:
        """Each change point with the move from the previous segment's median to the next one's, in %."""
        bounds = [0, *self.changes, len(self.values)]
        result = []
        for before, at, after in zip(bounds, bounds[1:], bounds[2:], strict=False):
            old, new = float(np.median(self.values[before:at])), float(np.median(self.values[at:after]))
            result.append((at, None if old == 0 else (new / old - 1) * 100))
        return result

    def describe(self) -> str:
        if len(self.values) < MIN_POINTS:
            return f"{self.profile} {self.metric}: {len(self.values)} runs, too few for change points"
        if not self.changes:
            return f"{self.profile} {self.metric}: {len(self.values)} runs, no change point"
        moves = ", ".join(
            f"run {at + 1} ({self.labels[at]}) {'?' if pct is None else f'{pct:+.0f} %'}" for at, pct in self.shifts()
        )
        return f"{self.profile} {self.metric}: {len(self.values)} runs, change at {moves}"


def change_points(
    values: Sequence[float], *, log_scale: bool = True, penalty_scale: float = PENALTY_SCALE
) -> list[int]:
    """Indices where a new level starts (PELT, least-squares cost). Latencies are compared on a log
    scale so that a doubling counts the same at 5 ms and at 5 s. The penalty is ``penalty_scale`` ·
    σ² · ln(n), σ estimated from successive differences (robust to the shifts themselves)."""
    signal = np.asarray(values, dtype=float)
    if signal.size < MIN_POINTS:
        return []
    if log_scale and np.all(signal > 0):
        signal = np.log(signal)
    diffs = np.diff(signal)
    sigma = float(np.median(np.abs(diffs - np.median(diffs)))) / 0.6745 / math.sqrt(2)
    if sigma == 0:
        sigma = float(np.std(diffs)) / math.sqrt(2) or 1e-9
    penalty = penalty_scale * sigma**2 * math.log(signal.size)
    algorithm = ruptures.Pelt(model="l2", min_size=MIN_SEGMENT, jump=1).fit(signal.reshape(-1, 1))
    return [int(i) for i in algorithm.predict(pen=penalty)[:-1]]


def series(entries: Iterable[Mapping[str, Any]], *, include_busy: bool = False) -> dict[tuple[str, str], MetricTrend]:
    """Each (profile, metric) over the history: regression rules' medians and contract metrics' values, in
    the order the runs were gated; runs with a fault switched on are left out, busy runs unless asked."""
    trends: dict[tuple[str, str], MetricTrend] = {}
    for entry in entries:
        if entry.get("faults") or (entry.get("busy") and not include_busy):
            continue
        profile = entry.get("profile", "?")
        label = str(entry.get("run_at") or entry.get("at") or "")
        points = {name: m.get("value") for name, m in entry.get("rules", {}).items()}
        points |= dict(entry.get("metrics", {}))
        for metric, value in points.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                trend = trends.setdefault((profile, metric), MetricTrend(profile, metric, [], []))
                trend.values.append(float(value))
                trend.labels.append(label)
    for trend in trends.values():
        trend.changes = change_points(trend.values)
    return trends


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def plot(trend: MetricTrend, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 3))
    runs = np.arange(1, len(trend.values) + 1)
    axes.plot(runs, trend.values, marker="o", markersize=3, linewidth=1)
    bounds = [0, *trend.changes, len(trend.values)]
    for start, end in itertools.pairwise(bounds):
        level = float(np.median(trend.values[start:end]))
        axes.hlines(level, start + 0.5, end + 0.5, colors="tab:green", linewidth=2)
    for at in trend.changes:
        axes.axvline(at + 0.5, color="tab:red", linestyle="--", linewidth=1)
    axes.set_title(f"{trend.profile}: {trend.metric}")
    axes.set_xlabel("run (oldest first); red: change point, green: segment median")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def write_trend(trends: Mapping[tuple[str, str], MetricTrend], out: Path) -> list[str]:
    """A PNG per metric, ``trend.txt`` (one line per metric), ``trend.json`` and ``index.html`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.png"):
        stale.unlink()
    lines, cards, data = [], [], []
    for (profile, metric), trend in sorted(trends.items()):
        lines.append(trend.describe())
        data.append({"profile": profile, "metric": metric, "values": trend.values, "changes": trend.changes})
        if len(trend.values) >= 2:
            name = f"{_slug(profile)}-{_slug(metric)}.png"
            plot(trend, out / name)
            cards.append(
                f'<figure><img src="{name}" alt="{html.escape(metric)}"><figcaption>'
                f"{html.escape(trend.describe())}</figcaption></figure>"
            )
    (out / "trend.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "trend.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    (out / "index.html").write_text(
        "<!doctype html><meta charset=utf-8><title>batchqa trend</title>"
        "<h1>Change points over the run history</h1><p>PELT (ruptures), least-squares cost on log values, "
        "penalty 8·σ²·ln(n). Runs with a fault switched on and runs on a busy machine are left out.</p>"
        + "".join(cards),
        encoding="utf-8",
    )
    return lines


@click.command("trend")
@click.option(
    "--history",
    "histories",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"History files (repeat); default {DEFAULT_HISTORY} and {NIGHTLY_HISTORY} where they exist.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True)
@click.option("--profile", default=None, help="Only this profile.")
@click.option("--include-busy", is_flag=True, help="Also use runs gated on a busy machine.")
def trend_command(histories: tuple[Path, ...], out: Path, profile: str | None, include_busy: bool) -> None:
    """Find change points per metric in the gate's history and plot each metric with them marked."""
    paths = histories or tuple(p for p in (DEFAULT_HISTORY, NIGHTLY_HISTORY) if p.exists())
    entries = [e for p in paths for e in read_history(p) if profile is None or e.get("profile") == profile]
    if not entries:
        raise click.ClickException(f"no gated runs in {', '.join(map(str, paths)) or DEFAULT_HISTORY}")
    console = wide_console()
    for line in write_trend(series(entries, include_busy=include_busy), out):
        console.print(line, markup=False)
    console.print(f"plots and index.html in {out}")


if __name__ == "__main__":
    trend_command()
