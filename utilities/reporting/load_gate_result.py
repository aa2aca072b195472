"""The load gate as an Allure result of its own: its verdict, the run's key figures as parameters and a CSV, the
gate's output and the performance report attached, so the single-file report shows the load beside the suites."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

from utilities.perf.gate_runs import repeat_runs

PERF_RESULT_FILE = "batchqa-load-gate-result.json"


def gate_result(run_dir: Path, *, passed: bool | None, gate_output: str | None) -> dict[str, Any] | None:
    """An Allure test result for the load run: passed or failed as the gate said, with its figures against
    the baseline, the gate's output and the performance report's plots attached. None when there is no run.

    A set of runs (``batchqa load --repeat K``) shows its last run's figures; the verdict is the gate's on the set.
    """
    runs = repeat_runs(run_dir)
    if not (run_dir / "summary.json").exists() and runs:
        run_dir = runs[-1]
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
