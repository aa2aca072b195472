"""``batchqa qa``: the main job. Runs every stage against one target and prints one summary.

Each stage is a child process (pytest, Locust, the gate, the benchmark), so one stage crashing cannot
take the others down, and each writes its own results under ``reports/``. Without ``--base-url``
every stage starts the bundled backend itself, with the settings that stage needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

console = Console()


@dataclass
class Stage:
    name: str
    command: list[str]
    figures: Callable[[Path], dict[str, str]] = field(default=lambda _out: {})


@dataclass
class StageResult:
    name: str
    exit_code: int
    seconds: float
    figures: dict[str, str]

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def _junit_figures(path: Path) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    if not path.exists():
        return {"tests": "no JUnit report written"}
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    if suite is None:
        return {}
    total, failures, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    return {
        "passed": str(total - failures - errors - skipped),
        "failed": str(failures + errors),
        "skipped": str(skipped),
    }


def _bench_figures(out: Path) -> dict[str, str]:
    path = out / "bench" / "bench.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {
        f"{point['profile']}, N={point['n']}": f"{point['total_s']['median']:.2f} s"
        + (f" ({point['ratio']:.2f}x ideal)" if point.get("ratio") else "")
        for point in data.get("summaries", [])
        if point["n"] == max(p["n"] for p in data["summaries"])
    }


def build_stages(base_url: str | None, out: Path) -> list[Stage]:
    python = sys.executable
    target = ["--base-url", base_url] if base_url else []
    e2e_junit = out / "qa" / "e2e-junit.xml"
    tests_junit = out / "qa" / "tests-junit.xml"
    stages = [
        Stage(
            "browser suite (e2e)",
            [
                python,
                "-m",
                "pytest",
                "e2e",
                "-p",
                "no:cacheprovider",
                f"--junitxml={e2e_junit}",
                f"--alluredir={out / 'allure-results'}",
                *target,
            ],
            lambda _o: _junit_figures(e2e_junit),
        ),
    ]
    if not base_url:
        # The self-tests need the bundled backend's internals; against a foreign target they do not apply.
        stages.insert(
            0,
            Stage(
                "API and unit self-tests",
                [
                    python,
                    "-m",
                    "pytest",
                    "tests",
                    "-p",
                    "no:cacheprovider",
                    "-q",
                    f"--junitxml={tests_junit}",
                    f"--alluredir={out / 'allure-results'}",
                ],
                lambda _o: _junit_figures(tests_junit),
            ),
        )
    stages.append(
        Stage(
            "throughput benchmark",
            [python, "-m", "utilities.cli", "bench", "--out", str(out / "bench"), *target],
            _bench_figures,
        )
    )
    return stages


def run_stage(stage: Stage, out: Path) -> StageResult:
    console.rule(f"[bold]{stage.name}")
    console.print(" ".join(stage.command), style="dim")
    started = time.monotonic()
    code = subprocess.call(stage.command)
    elapsed = time.monotonic() - started
    return StageResult(stage.name, code, elapsed, stage.figures(out))


def summary_table(results: list[StageResult]) -> Table:
    table = Table(title="batchqa qa")
    for column in ("stage", "result", "time", "figures"):
        table.add_column(column)
    for result in results:
        verdict = "[green]passed" if result.passed else f"[red]FAILED (exit {result.exit_code})"
        figures = ", ".join(f"{k}: {v}" for k, v in result.figures.items())
        table.add_row(result.name, verdict, f"{result.seconds:.0f} s", figures)
    return table


@click.command("qa")
@click.option("--base-url", default=None, help="Run against this deployment instead of the bundled backend.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"), show_default=True)
def qa_command(base_url: str | None, out: Path) -> None:
    """The main job: self-tests, browser suite, benchmark; a summary table; exit 1 if anything failed."""
    (out / "qa").mkdir(parents=True, exist_ok=True)
    results = [run_stage(stage, out) for stage in build_stages(base_url, out)]
    console.print(summary_table(results))
    summary = [r.__dict__ | {"passed": r.passed} for r in results]
    (out / "qa" / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"reports: {out.resolve()}")
    sys.exit(0 if all(r.passed for r in results) else 1)


if __name__ == "__main__":
    qa_command()
