"""``batchqa report``: Allure results -> one self-contained HTML file (Allure 3 "awesome", through npm), with
history kept across runs so trends show, and the load run's gate result and performance report linked in.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from utilities.paths import REPO_ROOT
from utilities.reporting.allure_metadata import CATEGORIES
from utilities.reporting.load_gate_result import PERF_RESULT_FILE, gate_result, write_gate_result

DEFAULT_RESULTS = Path("reports/allure-results")
DEFAULT_OUT = Path("reports/allure")
DEFAULT_HISTORY = Path("reports/allure-history.jsonl")
DEFAULT_PERF_RUN = Path("reports/perf/smoke")
REPORT_NAME = "US-003 batch processing: browser suite and load gate"
FINGERPRINT_FILE = ".batchqa-results-fingerprint"
HISTORY_LIMIT = 50  # runs kept for the trend charts


# Generating the HTML


class ReportError(click.ClickException):
    pass


def allure_cli(root: Path = REPO_ROOT) -> list[str]:
    """The pinned Allure from ``npm ci`` (package.json); an error saying how to get it otherwise."""
    local = root / "node_modules" / ".bin" / "allure"
    if not shutil.which("node"):
        raise ReportError("Node.js is not installed: the Allure report needs Node 20+ and npm (then `make setup`).")
    if not local.exists():
        raise ReportError(f"Allure is not installed in {root / 'node_modules'}: run `make setup` (it runs `npm ci`).")
    return [str(local)]


def fingerprint(results: Path) -> str:
    """Which results a report was made from: re-reporting the same run must not add a history entry."""
    digest = hashlib.sha256()
    for path in sorted(results.glob("*-result.json")):
        if path.name == PERF_RESULT_FILE:  # rewritten by every `batchqa report`; the run is the tests'
            continue
        digest.update(path.name.encode())
        digest.update(str(path.stat().st_size).encode())
    return digest.hexdigest()


def generate(
    results: Path,
    out: Path,
    *,
    history: Path,
    name: str = REPORT_NAME,
    categories: list[dict[str, Any]] | None = None,
) -> Path:
    """Run ``allure awesome --single-file``; returns the HTML file."""
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise ReportError(f"no Allure results in {results}: run pytest with --alluredir={results} first")
    out.mkdir(parents=True, exist_ok=True)
    history.parent.mkdir(parents=True, exist_ok=True)
    stamp = out / FINGERPRINT_FILE
    current = fingerprint(results)
    seen = stamp.exists() and stamp.read_text().strip() == current
    config = {
        "name": name,
        "historyPath": str(history.resolve()),
        "appendHistory": not seen,
        "historyLimit": HISTORY_LIMIT,
        "categories": categories if categories is not None else _categories_of(results),
    }
    config_path = out.parent / ".allurerc.json"
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    html = out / "index.html"
    html.unlink(missing_ok=True)
    # Beside the output, so files can be hard links (Allure's reader skips symbolic ones).
    with tempfile.TemporaryDirectory(prefix=".allure-view-", dir=out.parent) as view:
        completed = _run_allure(_readable(results, Path(view)), out, config_path, name)
    if completed.returncode != 0 or not html.exists():
        raise ReportError(
            f"allure awesome exited {completed.returncode}:\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}"
        )
    expected = sum(1 for _ in results.glob("*-result.json"))
    shown = report_total(out)
    if shown != expected:
        raise ReportError(f"the report shows {shown} tests, the results hold {expected}: see {out}")
    _strip_analytics(html)
    stamp.write_text(current + "\n")
    return html


def _run_allure(results: Path, out: Path, config_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    command = [
        *allure_cli(),
        "awesome",
        str(results),
        "--config",
        str(config_path.resolve()),
        "--output",
        str(out.resolve()),
        "--single-file",
        "--report-name",
        name,
        # The tree follows the spec: epic (US-003), feature (scenario group), story (scenario).
        "--group-by",
        "epic,feature,story",
    ]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)


def _readable(results: Path, view: Path) -> Path:
    """The results as the report shows them: every file as is, except that the fixture lists
    ("Set up", "Tear down") keep only fixtures that failed, ran steps or attached something.

    allure-pytest records every fixture a test touched, pytest-playwright's internals included, and each
    finalizer as an unnamed "<lambda>" without a status: some 30 lines above and 40 below each test body,
    where the reader looks for the body and the failure. The results directory itself is left untouched.
    """
    for path in results.iterdir():
        if path.name.endswith("-container.json"):
            data = json.loads(path.read_text(encoding="utf-8"))
            for key in ("befores", "afters"):
                data[key] = [fixture for fixture in data.get(key, []) if _worth_showing(fixture)]
            (view / path.name).write_text(json.dumps(data), encoding="utf-8")
        else:
            try:
                os.link(path, view / path.name)
            except OSError:
                shutil.copy2(path, view / path.name)
    return view


def report_total(out: Path) -> int | None:
    """How many tests the generated report counts (its summary.json), None when it wrote none."""
    path = out / "summary.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("stats", {}).get("total")


def _worth_showing(fixture: Mapping[str, Any]) -> bool:
    return fixture.get("status") in ("failed", "broken") or bool(fixture.get("steps") or fixture.get("attachments"))


# Allure 3.18's awesome template always embeds Google Analytics (analyticsEnable is hard-coded true in
# @allurereport/plugin-awesome): opening a test report must not call out to a third party.
_ANALYTICS = re.compile(
    r"\s*<script async src=\"https://www\.googletagmanager\.com/gtag/js\?[^\"]*\"></script>"
    r"\s*<script>\s*window\.dataLayer[\s\S]*?</script>"
)


def _strip_analytics(html: Path) -> None:
    text = html.read_text(encoding="utf-8")
    stripped = _ANALYTICS.sub("", text, count=1)
    if stripped != text:
        html.write_text(stripped, encoding="utf-8")


def _categories_of(results: Path) -> list[dict[str, Any]]:
    """The results' own categories.json (written by the pytest session), else the kit's."""
    path = results / "categories.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return CATEGORIES


@click.command("report")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_RESULTS, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True)
@click.option("--history", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_HISTORY, show_default=True)
@click.option(
    "--perf",
    "perf_run",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_PERF_RUN,
    show_default=True,
    help="A `batchqa load` run to add as a result of its own, linked to its performance report (skipped if absent).",
)
@click.option("--gate-exit", type=int, default=None, help="The gate's exit code for that run (else judged here).")
@click.option("--gate-output", type=click.Path(dir_okay=False, path_type=Path), default=None)
def report_command(
    results: Path, out: Path, history: Path, perf_run: Path, gate_exit: int | None, gate_output: Path | None
) -> None:
    """Make the Allure report: one HTML file that opens from disk, with trends from earlier runs."""
    (results / PERF_RESULT_FILE).unlink(missing_ok=True)
    result = gate_result(
        perf_run,
        passed=None if gate_exit is None else gate_exit == 0,
        gate_output=gate_output.read_text(encoding="utf-8") if gate_output and gate_output.exists() else None,
    )
    if result is not None and results.is_dir():
        write_gate_result(results, result)
    html = generate(results, out, history=history)
    click.echo(f"Allure report: {html.resolve()} ({html.stat().st_size / 1e6:.1f} MB, opens from disk)")
    if result is not None:
        click.echo(f"performance report: {(perf_run / 'index.html').resolve()}")


if __name__ == "__main__":
    report_command()
