"""``make qa``'s stages — the browser suite, the smoke load profile, its gate, the Allure report — each a child process
whose output is teed to a log under ``reports/qa/``, so one stage crashing cannot take the others down."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from utilities.procs.video import video_available
from utilities.qa.figures import e2e_figures, gate_figures, load_figures, report_figures
from utilities.qa.run_paths import Paths

console = Console(width=None if sys.stdout.isatty() else 140)


@dataclass
class Stage:
    name: str
    command: list[str]
    figures: Callable[[Paths], dict[str, str]] = field(default=lambda _paths: {})
    log: Path | None = None  # also keep the output here (the console still shows it)
    optional_reason: Callable[[], str | None] = field(default=lambda: None)


@dataclass
class StageResult:
    name: str
    exit_code: int | None  # None: not run (the reason is in figures["skipped"])
    seconds: float
    figures: dict[str, str]

    @property
    def passed(self) -> bool:
        return self.exit_code in (0, None)

    @property
    def verdict(self) -> str:
        if self.exit_code is None:
            return "[yellow]not run"
        return "[green]passed" if self.exit_code == 0 else f"[red]FAILED (exit {self.exit_code})"


def no_node() -> str | None:
    from utilities.paths import REPO_ROOT

    if shutil.which("node") is None:
        return "Node.js is not installed, so no Allure HTML (the results are in reports/allure-results)"
    if not (REPO_ROOT / "node_modules" / ".bin" / "allure").exists():
        return "Allure is not installed: run `make setup` (it runs `npm ci`)"
    return None


def build_stages(base_url: str | None, paths: Paths) -> list[Stage]:
    python = sys.executable
    target = ["--base-url", base_url] if base_url else []
    video = ["--video=retain-on-failure"] if video_available() else []
    return [
        Stage(
            "black-box suites (e2e: api, sockets, browser)",
            [
                python,
                "-m",
                "pytest",
                "e2e",
                "-p",
                "no:cacheprovider",
                f"--junitxml={paths.e2e_junit}",
                f"--alluredir={paths.allure_results}",
                "--clean-alluredir",
                *video,
                *target,
            ],
            e2e_figures,
        ),
        Stage(
            "load: smoke profile",
            [python, "-m", "utilities.perf.load", "--profile", "smoke", "--out", str(paths.perf_run), *target],
            load_figures,
        ),
        Stage(
            "gate: smoke against its baseline",
            [python, "-m", "utilities.perf.gate", "--run", str(paths.perf_run)],
            gate_figures,
            log=paths.gate_output,
        ),
    ]


def report_stage(paths: Paths, gate: StageResult | None) -> Stage:
    command = [
        sys.executable,
        "-m",
        "utilities.reporting.allure_report",
        "--results",
        str(paths.allure_results),
        "--out",
        str(paths.allure_html.parent),
        "--history",
        str(paths.out / "allure-history.jsonl"),
        "--perf",
        str(paths.perf_run),
        "--gate-output",
        str(paths.gate_output),
    ]
    if gate is not None and gate.exit_code is not None:
        command += ["--gate-exit", str(gate.exit_code)]
    return Stage("Allure report", command, report_figures, optional_reason=no_node)


def run_stage(stage: Stage, paths: Paths) -> StageResult:
    console.rule(f"[bold]{escape(stage.name)}")
    if reason := stage.optional_reason():
        console.print(f"[yellow]skipped: {escape(reason)}")
        return StageResult(stage.name, None, 0.0, {"skipped": reason})
    console.print(" ".join(stage.command), style="dim", soft_wrap=True)
    started = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    code = subprocess.call(stage.command, env=env) if stage.log is None else tee(stage.command, stage.log, env)
    elapsed = time.monotonic() - started
    return StageResult(stage.name, code, elapsed, stage.figures(paths))


def tee(command: list[str], log: Path, env: dict[str, str]) -> int:
    """Run ``command`` showing its output and keeping a copy in ``log``."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) as process:
        assert process.stdout is not None
        with open(log, "wb") as sink:
            for chunk in iter(lambda: process.stdout.read1(8192), b""):  # type: ignore[union-attr]
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                sink.write(chunk)
    return process.returncode
