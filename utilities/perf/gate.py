"""``batchqa gate``: compare a run with its baseline in fixtures/baselines and with earlier runs."""

from __future__ import annotations

import json
import logging
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from utilities.paths import BASELINES_DIR

log = logging.getLogger(__name__)

DEFAULT_RUN = Path("reports/perf/smoke")
DEFAULT_HISTORY = Path("reports/perf/history.jsonl")
HISTORY_WINDOW = 5
MIN_REGRESSION_PCT = 10.0

Better = Literal["lower", "higher"]
Status = Literal["pass", "fail", "missing", "skipped", "inconclusive"]
BUSY_METRIC = "host_other_cores"


@dataclass(frozen=True, kw_only=True)
class MetricRule:
    """One gated metric: a baseline with a relative and an absolute tolerance, and/or a hard limit.

    For ``better="lower"`` the threshold is ``max(baseline * (1 + pct/100), baseline + abs)``, the
    absolute part keeping tiny values (a 4 ms p50) from failing on scheduler noise; a ``limit`` is
    a ceiling of its own, and the stricter of the two applies. Mirrored for ``better="higher"``.
    """

    name: str
    better: Better = "lower"
    baseline: float | None = None
    tolerance_pct: float = 0.0
    tolerance_abs: float = 0.0
    limit: float | None = None
    required: bool = True
    cpu_bound: bool = False
    unit: str = ""
    description: str = ""
    why: str = ""
    observed: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.baseline is None and self.limit is None:
            raise ValueError(f"{self.name}: give a baseline, a limit or both")
        if self.better not in ("lower", "higher"):
            raise ValueError(f"{self.name}: better must be 'lower' or 'higher', not {self.better!r}")

    @property
    def threshold(self) -> float:
        candidates = []
        if self.baseline is not None:
            b = self.baseline
            if self.better == "lower":
                candidates.append(max(b * (1 + self.tolerance_pct / 100), b + self.tolerance_abs))
            else:
                candidates.append(min(b * (1 - self.tolerance_pct / 100), b - self.tolerance_abs))
        if self.limit is not None:
            candidates.append(self.limit)
        return min(candidates) if self.better == "lower" else max(candidates)

    def breached_by(self, value: float) -> bool:
        return value > self.threshold if self.better == "lower" else value < self.threshold

    def worse_pct(self, value: float, reference: float) -> float | None:
        """How much worse ``value`` is than ``reference``, in percent (negative = better)."""
        if reference == 0:
            return None if value == 0 else float("inf") if self.worse(value, reference) else float("-inf")
        change = (value - reference) / abs(reference) * 100
        return change if self.better == "lower" else -change

    def worse(self, value: float, reference: float) -> bool:
        return value > reference if self.better == "lower" else value < reference

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> MetricRule:
        known = {f for f in cls.__dataclass_fields__ if f != "name"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{name}: unknown keys {sorted(unknown)}")
        values = dict(data)
        values["observed"] = tuple(values.get("observed", ()))
        return cls(name=name, **values)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["name"]
        data["observed"] = list(self.observed)
        defaults = {"required": True, "cpu_bound": False, "tolerance_pct": 0.0, "tolerance_abs": 0.0}
        return {k: v for k, v in data.items() if v not in (None, "", []) and defaults.get(k, ...) != v}


@dataclass(frozen=True)
class Baseline:
    """A baseline file: which metrics a profile's run is held to, measured how, and with what slack.

    ``max_other_cores``: when other processes used more CPU than this during the run (the run's
    ``host_other_cores``), a breach of a ``cpu_bound`` rule is inconclusive rather than a failure —
    a neighbour's browser tests slow every request as much as a 2x regression would.
    """

    profile: str
    description: str
    rules: tuple[MetricRule, ...]
    measured: dict[str, Any] = field(default_factory=dict)
    max_other_cores: float | None = None
    contention: str = ""

    @classmethod
    def load(cls, path: Path) -> Baseline:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        rules = tuple(MetricRule.from_dict(name, spec) for name, spec in data["metrics"].items())
        busy = data.get("contention", {})
        return cls(
            data["profile"],
            data.get("description", ""),
            rules,
            data.get("measured", {}),
            busy.get("max_other_cores"),
            busy.get("why", ""),
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"profile": self.profile, "description": self.description, "measured": self.measured}
        if self.max_other_cores is not None:
            data["contention"] = {"max_other_cores": self.max_other_cores, "why": self.contention}
        data["metrics"] = {rule.name: rule.as_dict() for rule in self.rules}
        return data

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Check:
    rule: MetricRule
    value: float | None
    status: Status

    @property
    def over_pct(self) -> float | None:
        """For a breach: how far past the threshold, in percent of the threshold."""
        if self.value is None or not self.rule.breached_by(self.value):
            return None
        return self.rule.worse_pct(self.value, self.rule.threshold)

    @property
    def change_pct(self) -> float | None:
        """Against the baseline, in percent; positive = worse."""
        if self.value is None or self.rule.baseline is None:
            return None
        return self.rule.worse_pct(self.value, self.rule.baseline)

    def problem(self) -> str | None:
        rule = self.rule
        if self.status == "missing":
            return f"{rule.name}: not measured in this run (required)"
        if self.status != "fail":
            return None
        return self.breach()

    def breach(self) -> str | None:
        rule = self.rule
        if self.value is None or not rule.breached_by(self.value):
            return None
        word = "above" if rule.better == "lower" else "below"
        return (
            f"{rule.name} = {fmt_num(self.value)}{rule.unit}, "
            f"{word} the threshold {fmt_num(rule.threshold)}{rule.unit} "
            f"by {fmt_num(abs(self.value - rule.threshold))}{rule.unit} ({_pct(self.over_pct)})"
        )


@dataclass
class GateReport:
    """Every rule's check; ``problems()`` is empty when the run is within its baseline."""

    baseline: Baseline
    checks: list[Check]
    other_cores: float | None = None

    @property
    def busy(self) -> bool:
        """Other processes used more CPU during the run than the baseline allows for."""
        limit = self.baseline.max_other_cores
        return limit is not None and self.other_cores is not None and self.other_cores > limit

    def inconclusive(self) -> list[Check]:
        return [c for c in self.checks if c.status == "inconclusive"]

    @property
    def ok(self) -> bool:
        return not self.problems()

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status in ("fail", "missing")]

    def problems(self) -> list[str]:
        return [p for c in self.checks if (p := c.problem())]


def evaluate(metrics: Mapping[str, float], baseline: Baseline, *, strict: bool = False) -> GateReport:
    """Check every rule; on a busy machine (see ``Baseline``) CPU-bound breaches are inconclusive
    unless ``strict``."""
    other = metrics.get(BUSY_METRIC)
    report = GateReport(baseline, [], None if other is None else float(other))
    for rule in baseline.rules:
        value = metrics.get(rule.name)
        if value is None:
            report.checks.append(Check(rule, None, "missing" if rule.required else "skipped"))
        elif not rule.breached_by(float(value)):
            report.checks.append(Check(rule, float(value), "pass"))
        elif rule.cpu_bound and report.busy and not strict:
            report.checks.append(Check(rule, float(value), "inconclusive"))
        else:
            report.checks.append(Check(rule, float(value), "fail"))
    return report


# History


@dataclass(frozen=True)
class Trend:
    """A metric now against the median of the last passing runs of the same profile and target."""

    metric: str
    current: float
    reference: float
    runs: int
    change_pct: float | None  # positive = worse
    regression: bool


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s:%d is not JSON; skipped", path, number)
    return entries


def append_history(path: Path, entry: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")


def history_entry(summary: Mapping[str, Any], report: GateReport, run: str) -> dict[str, Any]:
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_at": summary.get("at"),
        "profile": summary["profile"]["name"],
        "target": summary.get("target"),
        "run": run,
        "passed": report.ok,
        "busy": report.busy,
        "metrics": {
            rule.name: summary["metrics"][rule.name]
            for rule in report.baseline.rules
            if rule.name in summary["metrics"]
        },
    }


def compare_history(
    metrics: Mapping[str, float],
    history: Iterable[Mapping[str, Any]],
    rules: Sequence[MetricRule],
    *,
    profile: str,
    target: str | None,
    window: int = HISTORY_WINDOW,
    regression_pct: float | None = None,
) -> list[Trend]:
    """Each gated metric against the median of the last ``window`` passing runs like this one (same
    profile and target, on a machine that was not busy).

    A regression is a move for the worse by more than ``regression_pct``, by default half the rule's
    own tolerance (at least 10%): drifting half-way to the gate is worth a look, run-to-run noise of
    a short run is not.
    """
    earlier = [
        h
        for h in history
        if h.get("profile") == profile
        and h.get("target") == target
        and h.get("passed", True)
        and not h.get("busy", False)
    ][-window:]
    trends = []
    for rule in rules:
        values = [h["metrics"][rule.name] for h in earlier if rule.name in h.get("metrics", {})]
        if rule.name not in metrics or not values:
            continue
        current, reference = float(metrics[rule.name]), statistics.median(values)
        change = rule.worse_pct(current, reference)
        # Tiny absolute moves (3 ms -> 4 ms) are noise, however large in percent.
        material = abs(current - reference) > rule.tolerance_abs / 2
        limit = regression_pct if regression_pct is not None else max(MIN_REGRESSION_PCT, rule.tolerance_pct / 2)
        regression = change is not None and change > limit and material
        trends.append(Trend(rule.name, current, reference, len(values), change, regression))
    return trends


# Rebaselining


def rebaseline(baseline: Baseline, runs: Sequence[Mapping[str, Any]]) -> tuple[Baseline, list[str]]:
    """New baseline values (the median of ``runs``) with the rules' tolerances kept; plus warnings
    where the observed spread comes close to a tolerance (a gate that would flake)."""
    warnings = []
    rules = []
    for rule in baseline.rules:
        values = [float(r["metrics"][rule.name]) for r in runs if rule.name in r["metrics"]]
        if not values or rule.baseline is None:
            rules.append(rule)
            continue
        median = statistics.median(values)
        updated = replace(rule, baseline=round(median, 4), observed=tuple(round(v, 4) for v in values))
        worst = max(values, key=lambda v: updated.worse_pct(v, median) or 0.0)
        if updated.breached_by(worst) or abs(worst - median) > 0.75 * abs(updated.threshold - median):
            spread = f"{fmt_num(min(values))}..{fmt_num(max(values))}"
            warnings.append(f"{rule.name}: runs spread {spread}, threshold {fmt_num(updated.threshold)}")
        rules.append(updated)
    measured = {
        "runs": len(runs),
        "at": [r.get("at") for r in runs],
        "machine": runs[0].get("machine") if runs else None,
    }
    return replace(baseline, rules=tuple(rules), measured=measured), warnings


# Rendering


def fmt_num(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def _pct(value: float | None) -> str:
    if value is None:
        return "–"
    if value in (float("inf"), float("-inf")):
        return "from 0"
    return f"{value:+.0f}%"


_STYLE = {"pass": "green", "fail": "bold red", "missing": "bold red", "skipped": "yellow", "inconclusive": "yellow"}


def checks_table(report: GateReport, *, only_failed: bool = False) -> Table:
    table = Table(title=f"gate: {report.baseline.profile}")
    for column, justify in (("metric", "left"), ("value", "right"), ("baseline", "right"), ("threshold", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("vs baseline", justify="right")
    table.add_column("result")
    order = {"fail": 0, "missing": 1, "inconclusive": 2, "skipped": 3, "pass": 4}
    for check in sorted(report.checks, key=lambda c: order[c.status]):
        if only_failed and check.status not in ("fail", "missing"):
            continue
        rule = check.rule
        result = check.status.upper()
        if check.status in ("fail", "inconclusive"):
            result += f" by {fmt_num(abs((check.value or 0) - rule.threshold))}{rule.unit} ({_pct(check.over_pct)})"
        table.add_row(
            escape(rule.name),
            f"{fmt_num(check.value)}{rule.unit}" if check.value is not None else "–",
            fmt_num(rule.baseline),
            f"{'≤' if rule.better == 'lower' else '≥'} {fmt_num(rule.threshold)}",
            _pct(check.change_pct),
            f"[{_STYLE[check.status]}]{result}[/]",
        )
    return table


def trends_table(trends: Sequence[Trend]) -> Table:
    table = Table(title="against earlier runs (median of the last passing runs; + = worse)")
    for column in ("metric", "now", "earlier", "runs", "change", ""):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for trend in sorted(trends, key=lambda t: -(t.change_pct or 0)):
        flag = "[bold red]REGRESSION[/]" if trend.regression else ""
        table.add_row(
            escape(trend.metric),
            fmt_num(trend.current),
            fmt_num(trend.reference),
            str(trend.runs),
            _pct(trend.change_pct),
            flag,
        )
    return table


# CLI


def wide_console(*, stderr: bool = False) -> Console:
    """A console that does not squeeze the tables to 80 columns when output goes to a CI log."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def default_baseline(profile: str) -> Path:
    return BASELINES_DIR / f"{profile}.json"


def _load_summary(run: Path) -> dict[str, Any]:
    path = run / "summary.json" if run.is_dir() else run
    if not path.exists():
        raise click.ClickException(f"no run summary at {path}; run `batchqa load` (or `batchqa scaling`) first")
    return json.loads(path.read_text(encoding="utf-8"))


@click.command("gate")
@click.option(
    "--run",
    "run_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_RUN,
    show_default=True,
    help="A run directory (or its summary.json) from `batchqa load` or `batchqa scaling`.",
)
@click.option(
    "--baseline", type=click.Path(path_type=Path), default=None, help="Default fixtures/baselines/PROFILE.json."
)
@click.option("--history", type=click.Path(path_type=Path), default=DEFAULT_HISTORY, show_default=True)
@click.option("--record/--no-record", default=True, show_default=True, help="Append this run to the history.")
@click.option("--window", type=click.IntRange(min=1), default=HISTORY_WINDOW, show_default=True)
@click.option(
    "--regression-pct",
    type=float,
    default=None,
    help="Flag a move for the worse past this percent (default: half of each rule's tolerance, at least 10).",
)
@click.option("--fail-on-regression", is_flag=True, help="Also exit 1 on a regression against the history.")
@click.option("--strict", is_flag=True, help="Fail CPU-bound breaches even when the machine was busy.")
@click.option(
    "--rebaseline",
    "rebaseline_runs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Instead of gating: set the baseline's values to the median of these runs (repeat the option).",
)
def gate_command(
    run_path: Path,
    baseline: Path | None,
    history: Path,
    record: bool,
    window: int,
    regression_pct: float | None,
    fail_on_regression: bool,
    strict: bool,
    rebaseline_runs: tuple[Path, ...],
) -> None:
    """Compare a run with its baseline; exit 1 with a table of what failed and by how much."""
    console = wide_console()
    if rebaseline_runs:
        summaries = [_load_summary(p) for p in rebaseline_runs]
        path = baseline or default_baseline(summaries[0]["profile"]["name"])
        updated, warnings = rebaseline(Baseline.load(path), summaries)
        updated.write(path)
        console.print(f"wrote {path} from {len(summaries)} runs")
        for warning in warnings:
            console.print(f"[yellow]noisy: {warning}[/]")
        return
    summary = _load_summary(run_path)
    profile = summary["profile"]["name"]
    path = baseline or default_baseline(profile)
    if not path.exists():
        raise click.ClickException(f"no baseline for profile {profile!r} at {path}")
    rules = Baseline.load(path)
    report = evaluate(summary["metrics"], rules, strict=strict)
    console.print(checks_table(report))
    if report.busy:
        verdict = (
            "--strict: CPU-bound breaches fail anyway."
            if strict
            else f"{len(report.inconclusive())} CPU-bound breach(es) are inconclusive, not failures; "
            "rerun on a quiet machine, or pass --strict."
        )
        console.print(
            f"[yellow]busy machine: other processes used {report.other_cores:.2f} cores during this run "
            f"(the baseline allows {rules.max_other_cores:g}). {verdict}[/]"
        )
        for check in report.inconclusive():
            console.print(f"  ? {escape(check.breach() or check.rule.name)}")
    trends = compare_history(
        summary["metrics"],
        read_history(history),
        rules.rules,
        profile=profile,
        target=summary.get("target"),
        window=window,
        regression_pct=regression_pct,
    )
    if trends:
        console.print(trends_table(trends))
        if report.busy:
            console.print(
                "[yellow]this run shared the machine with busy neighbours: moves against history say little[/]"
            )
    else:
        console.print(f"no earlier runs of {profile!r} against {summary.get('target')} in {history} to compare with")
    if record:
        append_history(history, history_entry(summary, report, str(run_path)))
    regressions = [t for t in trends if t.regression]
    if not report.ok:
        console.print(f"[bold red]gate FAILED[/] against {path}:")
        for problem in report.problems():
            console.print(f"  - {escape(problem)}")
        raise SystemExit(1)
    if regressions:
        console.print(f"[yellow]{len(regressions)} metric(s) regressed against earlier runs (see the table above)[/]")
        if fail_on_regression:
            raise SystemExit(1)
    console.print(f"[green]gate passed[/] ({len(report.checks)} metrics against {path})")


if __name__ == "__main__":
    gate_command()
