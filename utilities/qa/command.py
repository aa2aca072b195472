"""``batchqa qa``: the main job. The browser suite, the smoke load profile and its gate, the Allure and
performance reports, then one summary table with the key figures against their baselines.

Each stage is a child process (pytest, ``batchqa load``, ``batchqa gate``, ``batchqa report``), so one stage
crashing cannot take the others down, and each writes its results under ``reports/``. Without
``--base-url`` the e2e suite and the load run each start the bundled backend with the settings they need;
with it, every stage runs against that deployment.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from utilities.procs.video import NO_VIDEO, video_available
from utilities.qa.figures import HEADLINE_METRICS, e2e_budgets, gate_rows, perf_summary
from utilities.qa.run_paths import Paths
from utilities.qa.stages import StageResult, build_stages, report_stage, run_stage

console = Console(width=None if sys.stdout.isatty() else 140)


def summary_table(results: list[StageResult], wall_s: float) -> Table:
    table = Table(title=f"batchqa qa: {wall_s / 60:.1f} min", title_justify="left")
    for column in ("stage", "result", "time", "passed", "failed", "skipped", "figures"):
        table.add_column(column, justify="right" if column in ("time", "passed", "failed", "skipped") else "left")
    for result in results:
        figures = dict(result.figures)
        counts = [figures.pop(key, "") for key in ("passed", "failed", "skipped")]
        text = "; ".join(f"{k}: {v}" for k, v in figures.items())
        table.add_row(escape(result.name), result.verdict, f"{result.seconds:.0f} s", *counts, escape(text))
    return table


_RESULT_STYLE = {
    "pass": "green",
    "no regression": "green",
    "fail": "bold red",
    "missing": "bold red",
    "regression": "bold red",
    "inconclusive": "yellow",
}


def baselines_table(paths: Paths) -> Table | None:
    rows = gate_rows(paths)
    table = Table(title="key figures against baselines", title_justify="left")
    for column in ("figure", "value", "baseline", "threshold", "result"):
        table.add_column(column, justify="left" if column in ("figure", "result") else "right")
    failed = ("fail", "missing", "regression", "inconclusive")
    shown = [row for row in rows if row["metric"] in HEADLINE_METRICS or row["result"] in failed]
    for row in [*e2e_budgets(paths), *shown]:
        style = _RESULT_STYLE.get(row["result"], "")
        result = f"[{style}]{row['result']}" if style else row["result"]
        table.add_row(escape(row["metric"]), row["value"], row["baseline"], row["threshold"], result)
    if not table.row_count:
        return None
    notes = []
    if any(row["result"] == "inconclusive" for row in rows):
        busy = (perf_summary(paths) or {}).get("metrics", {}).get("host_other_cores")
        notes.append(
            "inconclusive = a regression measured while other processes used "
            + (f"{busy:.2f} cores" if busy is not None else "the machine")
            + ": not judged (batchqa gate --strict judges it); contract limits are always judged"
        )
    if len(shown) < len(rows):
        notes.append(f"{len(shown)} of {len(rows)} gated load metrics shown; all of them: {paths.gate_output}")
    table.caption = "\n".join(notes) or None
    table.caption_justify = "left"
    return table


def report_paths(paths: Paths) -> list[tuple[str, Path]]:
    candidates = [
        ("Allure report (one file, opens from disk)", paths.allure_html),
        ("performance report", paths.perf_run / "index.html"),
        ("Locust's own report", paths.perf_run / "locust.html"),
        ("gate output", paths.gate_output),
        ("this summary (JSON)", paths.qa / "summary.json"),
        ("failure artefacts (traces, screenshots, videos)", Path("test-results")),
    ]
    return [(label, path) for label, path in candidates if path.exists()]


@click.command("qa")
@click.option(
    "--base-url", default=None, help="Run every stage against this deployment instead of the bundled backend."
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"), show_default=True)
def qa_command(base_url: str | None, out: Path) -> None:
    """The main job: browser suite, smoke load and gate, Allure and performance reports; a summary table.

    Exits 1 when a test failed, the load run failed, the gate failed or a report could not be made.
    """
    started = time.monotonic()
    paths = Paths(out)
    paths.qa.mkdir(parents=True, exist_ok=True)
    if not video_available():
        console.print(f"[yellow]{NO_VIDEO}")
    results = [run_stage(stage, paths) for stage in build_stages(base_url, paths)]
    gate = next((r for r in results if r.name.startswith("gate")), None)
    results.append(run_stage(report_stage(paths, gate), paths))
    wall = time.monotonic() - started

    console.rule("[bold]summary")
    console.print(f"target: {base_url or 'the bundled reference backend (started per stage)'}")
    console.print(summary_table(results, wall))
    if (figures := baselines_table(paths)) is not None:
        console.print(figures)
    summary = {
        "target": base_url or "bundled",
        "wall_s": round(wall, 1),
        "passed": all(r.passed for r in results),
        "stages": [asdict(r) | {"passed": r.passed} for r in results],
        "figures_against_baselines": [*e2e_budgets(paths), *gate_rows(paths)],
    }
    (paths.qa / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    for label, path in report_paths(paths):
        console.print(f"{label}: {escape(str(path.resolve()))}", soft_wrap=True)
    failed = [r.name for r in results if not r.passed]
    if failed:
        console.print(f"[bold red]qa FAILED[/]: {', '.join(failed)}")
        sys.exit(1)
    console.print("[bold green]qa passed")


if __name__ == "__main__":
    qa_command()
