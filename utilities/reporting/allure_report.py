"""``batchqa report``: Allure results -> one self-contained HTML file (Allure 3 "awesome", through npm), with
history kept across runs so trends show, and the load run's gate result and performance report linked in.

Also where the results directory's ``categories.json`` and ``environment.properties`` are written (the
root ``conftest.py`` calls these at the end of a pytest session).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from utilities.paths import REPO_ROOT

DEFAULT_RESULTS = Path("reports/allure-results")
DEFAULT_OUT = Path("reports/allure")
DEFAULT_HISTORY = Path("reports/allure-history.jsonl")
DEFAULT_PERF_RUN = Path("reports/perf/smoke")
REPORT_NAME = "US-003 batch processing: browser suite and load gate"
PERF_RESULT_FILE = "batchqa-load-gate-result.json"
FINGERPRINT_FILE = ".batchqa-results-fingerprint"
HISTORY_LIMIT = 50  # runs kept for the trend charts

# Allure 2 "compatibility" rules, which Allure 3 also reads (as its `categories` config). The first rule that
# matches a test wins, so infrastructure comes before the product. Patterns are searched in Allure 3 but must
# match the whole text in Allure 2 (Java), hence the [\s\S]* on both sides.
_ANY = r"[\s\S]*"
INFRASTRUCTURE = (
    r"ECONNREFUSED|Connection refused|ConnectError|ConnectTimeout|net::ERR_CONNECTION_(?:REFUSED|RESET)"
    r"|backend did not report its URL|never became healthy"
    r"|BrowserType\.launch|Executable doesn't exist|Target page, context or browser has been closed"
    r"|Browser(?: has been)? closed|Connection closed while reading from the driver"
    r"|No space left on device|Too many open files|Address already in use|Cannot allocate memory"
    r"|redis\.exceptions\.ConnectionError|psycopg\.OperationalError|EndpointConnectionError"
    r"|BATCHQA_REQUIRE_SERVICES is set"
)
TIMEOUTS = r"Timeout \d+ms exceeded|TimeoutError|Failed: Timeout >"
CATEGORIES: list[dict[str, Any]] = [
    {
        "name": "Infrastructure problems",
        "description": "The machine, the browser or a server the tests need did not start, answer or stay up: "
        "connection refused, a browser that would not launch, the bundled backend that never became healthy, "
        "a missing Redis/PostgreSQL/S3. Rerun before reading anything into it.",
        "matchedStatuses": ["broken", "failed"],
        "messageRegex": f"{_ANY}(?:{INFRASTRUCTURE}){_ANY}",
    },
    {
        "name": "Product did not get there in time",
        "description": "A wait ran out: the page or the batch never reached the state the test waited for "
        "(Playwright timeouts, pytest-timeout). Usually the product; the trace and screenshot say which state "
        "it was stuck in.",
        "matchedStatuses": ["broken", "failed"],
        "messageRegex": f"{_ANY}(?:{TIMEOUTS}){_ANY}",
    },
    {
        "name": "Product defects",
        "description": "A check on what the product did failed (assert, Playwright expect, a validator): "
        "the product behaved differently from US-003 and docs/contract.md.",
        "matchedStatuses": ["failed"],
    },
    {
        "name": "Test defects",
        "description": "The test code or a fixture raised (TypeError, AttributeError, KeyError, a fixture error): "
        "fix the kit, not the product.",
        "matchedStatuses": ["broken"],
    },
]


def write_categories(results: Path) -> Path:
    path = results / "categories.json"
    path.write_text(json.dumps(CATEGORIES, indent=2) + "\n", encoding="utf-8")
    return path


def _escape_property(text: str, *, key: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "")
    if key:
        for char in (" ", ":", "=", "#", "!"):
            text = text.replace(char, f"\\{char}")
    return text


def write_environment(results: Path, values: Mapping[str, str]) -> Path:
    """``environment.properties`` (Java properties format, which both Allure 2 and 3 read)."""
    lines = [f"{_escape_property(k, key=True)}={_escape_property(str(v), key=False)}" for k, v in values.items()]
    path = results / "environment.properties"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# The load gate as a result of its own


def gate_result(run_dir: Path, *, passed: bool | None, gate_output: str | None) -> dict[str, Any] | None:
    """An Allure test result for the load run: passed or failed as the gate said, with its figures against
    the baseline, the gate's output and the performance report's plots attached. None when there is no run."""
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        return None
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    profile = summary["profile"]["name"]
    metrics = summary.get("metrics", {})
    figures = key_figures(run_dir)
    if passed is None:
        passed = all(f["result"] in ("pass", "skipped", "inconclusive", "no regression") for f in figures)
    started = _epoch_ms(summary.get("at")) or int(time.time() * 1000)
    duration = int(float(metrics.get("duration_s", 0)) * 1000)
    failing = [f for f in figures if f["result"] in ("fail", "missing", "regression")]
    message = (
        None
        if passed
        else "; ".join(
            f"{f['metric']} {f['threshold']}: regression"
            if f["kind"] == "regression"
            else f"{f['metric']} = {f['value']} (contract limit {f['threshold']})"
            for f in failing
        )
        or "the gate failed (see its output)"
    )
    counts: dict[str, int] = {}
    for figure in figures:
        counts[figure["result"]] = counts.get(figure["result"], 0) + 1
    verdict = ", ".join(f"{n} {result}" for result, n in sorted(counts.items()))
    lines = [
        f"**Gate {'passed' if passed else 'FAILED'}** against `fixtures/baselines/{profile}.json`: {verdict}.",
    ]
    if counts.get("inconclusive"):
        lines.append(
            f"Inconclusive: regressions measured while other processes used "
            f"{metrics.get('host_other_cores', 0):.2f} cores of {metrics.get('host_cpus', 0):.0f}, more than the "
            "baseline allows; they are not judged on a busy machine (`batchqa gate --strict` judges them). "
            "Contract limits are enforced all the same."
        )
    lines += [
        f"{summary['profile'].get('description', '')} Target: {summary.get('target')}.",
        f"Performance report: `{_shown(run_dir / 'index.html')}` (its plots are attached below), "
        f"Locust's own: `{_shown(run_dir / 'locust.html')}`.",
    ]
    attachments: dict[str, tuple[str, bytes]] = {"figures against the baseline": ("text/csv", _csv(figures))}
    if gate_output:
        attachments["gate output"] = ("text/plain", gate_output.encode("utf-8"))
    # The plots as images: Allure 3.18 shows an HTML attachment in a 150-pixel frame, too small for the report.
    for png in sorted(run_dir.glob("*.png")):
        attachments[f"plot: {png.stem}"] = ("image/png", png.read_bytes())
    from utilities.perf.gate import DEFAULT_HISTORY

    # Beside the run (a reports/perf/ tree), else where `batchqa gate` records by default.
    trend_dir = next(
        (d for d in (run_dir.parent / "trend", DEFAULT_HISTORY.parent / "trend") if (d / "trend.txt").exists()),
        run_dir.parent / "trend",
    )
    if (trend_dir / "trend.txt").exists():
        lines.append(f"Trend over the run history (change points): `{_shown(trend_dir / 'index.html')}`.")
        attachments["trend: change points"] = ("text/plain", (trend_dir / "trend.txt").read_bytes())
    for png in sorted(trend_dir.glob(f"{profile}-*.png")):
        attachments[f"trend: {png.stem}"] = ("image/png", png.read_bytes())
    return {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"batchqa-load/{profile}/{summary.get('at')}")),
        "historyId": hashlib.md5(f"batchqa.load.{profile}".encode()).hexdigest(),
        "testCaseId": hashlib.md5(f"batchqa.load.{profile}".encode()).hexdigest(),
        "fullName": f"perf.load#{profile}",
        "name": f"Load profile '{profile}' against its baseline (batchqa load + batchqa gate)",
        "status": "passed" if passed else "failed",
        "statusDetails": {"message": message} if message else {},
        "description": "\n\n".join(lines),
        "start": started,
        "stop": started + duration,
        "labels": [
            {"name": "epic", "value": "US-003 Batch processing"},
            {"name": "feature", "value": "Performance"},
            {"name": "story", "value": f"Load {profile}: throughput, latency, socket cadence, memory"},
            {"name": "severity", "value": "critical"},
            {"name": "parentSuite", "value": "perf"},
            {"name": "suite", "value": "load"},
            {"name": "framework", "value": "locust"},
        ],
        # No link: the report only makes http(s) links clickable, and this one is a file beside it.
        "links": [],
        "parameters": [],
        "attachments": [],
        "_attach": attachments,
    }


def _shown(path: Path) -> str:
    """A path as the reader would type it: relative to the working directory when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def key_figures(run_dir: Path) -> list[dict[str, Any]]:
    """Every contract limit and regression rule of a load run, as the gate judges it."""
    from utilities.perf.gate import Baseline, default_baseline, fmt_num, gate_run
    from utilities.perf.gate_runs import read_run

    run = read_run(run_dir)
    path = default_baseline(run.profile)
    if not path.exists():
        return []
    report = gate_run(run, Baseline.load(path))
    rows = []
    for check in report.limits:
        rule = check.rule
        rows.append(
            {
                "kind": "contract",
                "metric": rule.name,
                "value": f"{fmt_num(check.value)}{rule.unit}" if check.value is not None else "–",
                "baseline": "–",
                "threshold": rule.bound,
                "result": check.status,
            }
        )
    for regression in report.regressions:
        rule, comparison = regression.rule, regression.comparison
        rows.append(
            {
                "kind": "regression",
                "metric": rule.title,
                "value": f"{fmt_num(comparison.run_value)}{rule.unit}" if comparison else "–",
                "baseline": f"{fmt_num(comparison.baseline_value)}{rule.unit}" if comparison else "–",
                "threshold": f"{comparison.describe()}, floor {comparison.floor * 100:.0f} %"
                if comparison
                else f"floor {rule.min_effect_pct:.0f} %",
                "result": "no regression" if regression.status == "pass" else regression.status,
            }
        )
    return rows


def _csv(rows: list[dict[str, Any]]) -> bytes:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["kind", "metric", "value", "baseline", "threshold", "result"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def write_gate_result(results: Path, result: dict[str, Any]) -> None:
    attachments = result.pop("_attach")
    for name, (mime, body) in attachments.items():
        extension = {"text/csv": "csv", "text/plain": "txt", "image/png": "png"}[mime]
        source = f"{uuid.uuid5(uuid.NAMESPACE_URL, result['uuid'] + name)}-attachment.{extension}"
        (results / source).write_bytes(body)
        result["attachments"].append({"name": name, "source": source, "type": mime})
    (results / PERF_RESULT_FILE).write_text(json.dumps(result, indent=2), encoding="utf-8")


def _epoch_ms(iso: str | None) -> int | None:
    from datetime import datetime

    if not iso:
        return None
    try:
        return int(datetime.fromisoformat(iso).timestamp() * 1000)
    except ValueError:
        return None


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
