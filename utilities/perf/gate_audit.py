"""``batchqa gate-audit``: measure the gate itself — false alarms over repeated runs of unchanged code, and
detections over runs with a fault switched on, per rule, plus the smallest ``slow_requests`` it catches."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from utilities.perf import profiles
from utilities.perf.gate import gate_run, wide_console
from utilities.perf.gate_history import history_entry, rolling_baseline, rolling_option
from utilities.perf.gate_rules import Baseline, default_baseline
from utilities.perf.gate_runs import REPEAT_PREFIX, RunData, read_run, read_runs, repeat_option
from utilities.perf.gate_verdicts import GateReport
from utilities.perf.host_load import wait_for_quiet
from utilities.perf.load import FAULTS_ENV, REPORTS_DIR, repeat_directories, run_load

log = logging.getLogger(__name__)

DETECTION_GOAL = 0.95
QUIET_WAIT_S = 0.0


def _run_once(
    profile_name: str, directory: Path, fault: str, baseline: Baseline, wait_s: float, repeat: int = 1
) -> float | None:
    """One run of the profile into ``directory`` (``repeat`` runs in a row: a set in ``directory/run-N``) after
    waiting up to ``wait_s`` for a quiet spell; returns the other processes' CPU use seen just before."""
    before = None
    if wait_s > 0 and baseline.max_other_cores is not None:
        before = wait_for_quiet(baseline.max_other_cores, wait_s)
    profile = profiles.PROFILES[profile_name]
    for out in repeat_directories(directory, repeat):
        run_load(profile, base_url=None, out=out, console=Console(file=io.StringIO()), plots=False, faults=fault)
    return before


def collect_runs(
    profile_name: str, runs: int, baseline: Baseline, *, console: Console, wait_s: float = QUIET_WAIT_S
) -> list[Path]:
    """``runs`` fresh runs of unchanged code for ``batchqa gate --rebaseline --collect``."""
    out = REPORTS_DIR / "rebaseline"
    paths = []
    for number in range(1, runs + 1):
        directory = out / f"{profile_name}-{number:02d}"
        _run_once(profile_name, directory, "", baseline, wait_s)
        other = read_run(directory).other_cores
        console.print(f"run {number}/{runs}: {directory} (other processes {other or 0:.2f} cores)")
        paths.append(directory)
    return paths


@dataclass
class Outcome:
    """One audited run: the gate's verdict, which rules said regression (or would have, busy), the
    upload median's change, and how busy the machine was."""

    fault: str
    verdict: str
    regressions: list[str]
    inconclusive: list[str]
    limit_failures: list[str]
    upload_change_pct: float | None
    other_cores: float | None
    load_average: float
    strict_verdict: str = ""

    @classmethod
    def judge(
        cls, fault: str, run: RunData | Sequence[RunData], baseline: Baseline, report: GateReport | None = None
    ) -> Outcome:
        """Gate ``run`` (or a set of runs judged together) as the gate would (or take ``report``, its gating
        already done), and with ``--strict`` too: what judging a busy run anyway would have said (why busy runs
        are inconclusive)."""
        report = report or gate_run(run, baseline)
        return cls(
            fault,
            report.verdict,
            [c.rule.title for c in report.regressions if c.status == "regression"],
            [c.rule.title for c in report.regressions if c.status == "inconclusive"],
            [c.rule.name for c in report.limits if c.status in ("fail", "missing")],
            upload_median_change_pct(run, report),
            report.other_cores,
            os.getloadavg()[0],
            gate_run(run, baseline, strict=True).verdict,
        )

    def line(self, number: int) -> str:
        named = ", ".join(self.regressions + self.limit_failures) or "-"
        change = self.upload_change_pct if self.upload_change_pct is not None else "–"
        return (
            f"{self.fault or 'none'} #{number}: {self.verdict} ({escape(named)}; strict: {self.strict_verdict}); "
            f"upload {change} %, other cores {self.other_cores or 0:.2f}, load {self.load_average:.1f}"
        )


def run_directory_name(fault: str, number: int) -> str:
    """``none-01``, ``slow_requests-5-01``: where an audit keeps a run (``rejudge_runs`` reads it back)."""
    return f"{fault.replace('=', '-', 1) or 'none'}-{number:02d}"


def upload_median_change_pct(run: RunData | Sequence[RunData], report: GateReport) -> float | None:
    """How much the run's upload median (the geometric mean of a set's) moved from the baseline's pooled median
    (both normalised): the size of the regression a fault made, whichever statistic the rules judge."""
    runs = [run] if isinstance(run, RunData) else list(run)
    rule = next((r for r in report.baseline.regression if r.name == "upload" and r.distribution), None)
    if rule is None or rule.distribution is None:
        return None
    sets = [values for r in runs if (values := r.samples.get(rule.series)) is not None and len(values)]
    if len(sets) < len(runs):
        return None
    median = float(np.exp(np.mean([np.log(np.median(values)) for values in sets])))
    median /= report.speed if rule.normalise else 1.0
    return round((median / rule.distribution.median - 1) * 100, 1)


@dataclass
class Audit:
    """The audited runs, in the order they ran. With ``window``, each run is judged as ``batchqa gate
    --rolling WINDOW`` would judge it on a runner whose history holds the audit's earlier runs."""

    outcomes: list[Outcome] = field(default_factory=list)
    baseline: Baseline | None = None
    window: int = 0
    history: list[dict] = field(default_factory=list)

    def judge(self, fault: str, run: RunData | Sequence[RunData]) -> Outcome:
        """Gate one run, or a set of runs judged together (``--repeat``)."""
        if self.baseline is None:
            raise ValueError("an audit judges runs against a baseline")
        runs = [run] if isinstance(run, RunData) else list(run)
        baseline = self.baseline
        if self.window:
            target = runs[0].summary.get("target")
            baseline, _ = rolling_baseline(baseline, self.history, self.window, target=target)
        report = gate_run(runs, baseline)
        if self.window:
            self.history.extend(history_entry(each, report, index) for index, each in enumerate(runs))
        self.outcomes.append(Outcome.judge(fault, runs, baseline, report))
        return self.outcomes[-1]

    def by_fault(self) -> dict[str, list[Outcome]]:
        groups: dict[str, list[Outcome]] = {}
        for outcome in self.outcomes:
            groups.setdefault(outcome.fault, []).append(outcome)
        return groups

    def smallest_detected(self, goal: float = DETECTION_GOAL) -> str | None:
        """The smallest ``slow_requests`` value whose runs failed the gate in at least ``goal`` of cases."""
        detected = []
        for fault, runs in self.by_fault().items():
            if fault.startswith("slow_requests=") and sum(r.verdict == "fail" for r in runs) >= goal * len(runs):
                detected.append(int(fault.split("=", 1)[1]))
        return f"slow_requests={min(detected)}" if detected else None


def table(audit: Audit, rules: Sequence[str]) -> Table:
    """Rows: each fault setting ("none" = unchanged code); columns: gate failures, then per rule how many
    runs it called a regression (a false alarm without a fault, a detection with one)."""
    result = Table(title="gate audit: runs that failed the gate / runs (inconclusive: busy or another machine)")
    columns = ("fault", "runs", "gate failed", "inconclusive", "failed with --strict", "upload p50 change (median)")
    for column in (*columns, *rules, "load avg"):
        result.add_column(column, justify="left" if column == "fault" else "right")
    for fault, runs in audit.by_fault().items():
        changes = sorted(r.upload_change_pct for r in runs if r.upload_change_pct is not None)
        change = f"{changes[len(changes) // 2]:+.0f} %" if changes else "–"
        per_rule = [f"{sum(rule in r.regressions for r in runs)}" for rule in rules]
        result.add_row(
            fault or "none",
            str(len(runs)),
            f"{sum(r.verdict == 'fail' for r in runs)}/{len(runs)}",
            str(sum(r.verdict == "inconclusive" for r in runs)),
            f"{sum(r.strict_verdict == 'fail' for r in runs)}/{len(runs)}",
            change,
            *per_rule,
            f"{sum(r.load_average for r in runs) / len(runs):.1f}",
        )
    return result


def markdown(audit: Audit, rules: Sequence[str]) -> str:
    header = [
        "fault",
        "runs",
        "gate failed",
        "inconclusive (busy or another machine)",
        "failed with --strict",
        "upload p50 change",
        *rules,
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for fault, runs in audit.by_fault().items():
        changes = sorted(r.upload_change_pct for r in runs if r.upload_change_pct is not None)
        cells = [
            f"`{fault}`" if fault else "none (unchanged code)",
            str(len(runs)),
            f"{sum(r.verdict == 'fail' for r in runs)}/{len(runs)}",
            str(sum(r.verdict == "inconclusive" for r in runs)),
            f"{sum(r.strict_verdict == 'fail' for r in runs)}/{len(runs)}",
            f"{changes[len(changes) // 2]:+.0f} %" if changes else "–",
            *[str(sum(rule in r.regressions for r in runs)) for rule in rules],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def audit_runs(
    faults: Sequence[str],
    runs: int,
    *,
    profile_name: str,
    baseline: Baseline,
    out: Path,
    console: Console,
    wait_s: float = QUIET_WAIT_S,
    window: int = 0,
    repeat: int = 1,
) -> Audit:
    """Runs taken round-robin over ``faults`` (run 1 of each, then run 2 of each...), so a noisy spell of
    the machine spreads over every setting instead of spoiling one. With ``repeat`` K, each verdict is on a
    set of K runs in a row."""
    audit = Audit(baseline=baseline, window=window)
    for number in range(1, runs + 1):
        for fault in faults:
            directory = out / run_directory_name(fault, number)
            _run_once(profile_name, directory, fault, baseline, wait_s, repeat)
            console.print(audit.judge(fault, read_runs(directory)).line(number))
    return audit


_RUN_DIR = re.compile(r"^(?P<setting>.+)-(?P<number>\d{2,})$")


def rejudge_runs(out: Path, baseline: Baseline, *, console: Console, window: int = 0) -> Audit:
    """Gate the runs an earlier audit left in ``out`` (named by ``run_directory_name``) against
    ``baseline`` again, without running anything: after a rebaseline, or to judge held-out runs."""
    found = []
    for directory in out.iterdir():
        match = _RUN_DIR.match(directory.name)
        if match and _holds_runs(directory):
            setting = match["setting"]
            fault = "" if setting == "none" else setting.replace("-", "=", 1)
            found.append((int(match["number"]), fault, directory))
    if not found:
        raise click.UsageError(f"no audit runs in {out} (directories like none-01 with a summary.json)")
    audit = Audit(baseline=baseline, window=window)
    for number, fault, directory in sorted(found, key=lambda item: (item[0], item[1])):
        console.print(audit.judge(fault, read_runs(directory)).line(number))
    return audit


def _holds_runs(directory: Path) -> bool:
    """A run (summary.json) or a set of them (run-N/summary.json)."""
    return (directory / "summary.json").exists() or any(directory.glob(f"{REPEAT_PREFIX}*/summary.json"))


@click.command("gate-audit")
@click.option("--runs", type=click.IntRange(min=1), default=20, show_default=True, help="Runs per setting.")
@click.option("--fault", "faults", multiple=True, help="A BATCHQA_FAULTS value to detect (repeat): slow_requests=5.")
@click.option("--sweep", default=None, help="slow_requests values to try, e.g. 2,4,6,8: finds the smallest detected.")
@click.option("--no-clean", "skip_clean", is_flag=True, help="Skip the runs of unchanged code (false alarms).")
@click.option("--profile", "profile_name", default="smoke", show_default=True)
@click.option(
    "--wait-quiet",
    "wait_s",
    type=click.FloatRange(min=0),
    default=QUIET_WAIT_S,
    show_default=True,
    help="Before each run, wait up to this many seconds for other processes to use at most the baseline's "
    "max_other_cores (0, the default: do not wait).",
)
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--rejudge",
    is_flag=True,
    help="Run nothing: gate the runs already in --out against the baseline again (after a rebaseline).",
)
@rolling_option(
    "Judge each run as `batchqa gate --rolling N` would, against the last N clean runs of the audit so far "
    "(the baseline file's runs until N of them exist)."
)
@repeat_option(
    "Judge sets of K runs in a row, as `batchqa load --repeat K` and `batchqa gate` on its set would: "
    "--runs N then takes N sets (N x K runs) per setting."
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=REPORTS_DIR / "audit", show_default=True
)
def gate_audit_command(
    runs: int,
    faults: tuple[str, ...],
    sweep: str | None,
    skip_clean: bool,
    profile_name: str,
    wait_s: float,
    baseline: Path | None,
    rejudge: bool,
    window: int,
    repeat: int,
    out: Path,
) -> None:
    """Run the profile RUNS times on unchanged code and RUNS times per fault, gate every run, and print how
    often the gate failed (false alarms, detections) and which rules said so."""
    if os.environ.get(FAULTS_ENV):
        raise click.UsageError(f"unset {FAULTS_ENV}: the audit switches faults on itself (--fault)")
    settings = [] if skip_clean else [""]
    settings += list(faults)
    if sweep:
        try:
            settings += [f"slow_requests={int(v)}" for v in sweep.split(",") if v.strip()]
        except ValueError as error:
            raise click.BadParameter(f"expected whole milliseconds like 2,4,8, got {sweep!r}") from error
    if not settings:
        raise click.UsageError("nothing to run: drop --no-clean or give --fault/--sweep")
    path = baseline or default_baseline(profile_name)
    rules = Baseline.load(path)
    console = wide_console()
    if rejudge:
        audit = rejudge_runs(out, rules, console=console, window=window)
        faults = tuple(sorted({o.fault for o in audit.outcomes if o.fault}))
    else:
        audit = audit_runs(
            settings,
            runs,
            profile_name=profile_name,
            baseline=rules,
            out=out,
            console=console,
            wait_s=wait_s,
            window=window,
            repeat=repeat,
        )
    labels = [r.title for r in rules.regression if r.distribution is not None]
    console.print(table(audit, labels))
    smallest = audit.smallest_detected()
    if sweep or any(f.startswith("slow_requests=") for f in faults):
        goal = f"{DETECTION_GOAL:.0%}"
        console.print(f"smallest slow_requests failing the gate in ≥ {goal} of runs: {smallest or 'none'}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(
        json.dumps({"baseline": str(path), "outcomes": [asdict(o) for o in audit.outcomes]}, indent=1) + "\n",
        encoding="utf-8",
    )
    (out / "audit.md").write_text(markdown(audit, labels), encoding="utf-8")
    console.print(f"audit written to {out} (audit.json, audit.md)")


if __name__ == "__main__":
    gate_audit_command()
