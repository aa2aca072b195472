"""``batchqa gate``: hold a load run to its baseline's contract limits and regression rules; record it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from utilities.perf.gate_history import (
    DEFAULT_HISTORY,
    append_history,
    history_entry,
    read_history,
    rolling_baseline,
    rolling_option,
)
from utilities.perf.gate_rebaseline import RebaselineError
from utilities.perf.gate_rebaseline import rebaseline as rebuild
from utilities.perf.gate_rules import (
    BASELINES_DIR,
    BUSY_METRIC,
    Baseline,
    ContractLimit,
    RegressionRule,
    default_baseline,
)
from utilities.perf.gate_runs import RunData, RunError, read_runs
from utilities.perf.gate_stats import MIN_RUNS, statistic_name
from utilities.perf.gate_verdicts import GateReport, LimitCheck, RegressionCheck, evaluate, evaluate_runs

__all__ = [
    "BASELINES_DIR",
    "BUSY_METRIC",
    "Baseline",
    "ContractLimit",
    "GateReport",
    "RegressionRule",
    "checks_table",
    "default_baseline",
    "evaluate",
    "evaluate_runs",
    "gate_run",
    "wide_console",
]

log = logging.getLogger(__name__)

DEFAULT_RUN = Path("reports/perf/smoke")


def gate_run(
    run: RunData | Sequence[RunData], baseline: Baseline, *, strict: bool = False, min_effect_pct: float | None = None
) -> GateReport:
    """One run, or K runs judged together, against ``baseline``: their metrics, samples and calibrations."""
    runs = [run] if isinstance(run, RunData) else list(run)
    return evaluate_runs([r.gate_input() for r in runs], baseline, strict=strict, min_effect_pct=min_effect_pct)


# Rendering


def fmt_num(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "missing": "bold red",
    "regression": "bold red",
    "skipped": "yellow",
    "inconclusive": "yellow",
}


def limits_table(checks: list[LimitCheck], title: str) -> Table:
    table = Table(title=f"{title}: contract limits (always enforced)")
    for column, justify in (("metric", "left"), ("value", "right"), ("limit", "right"), ("result", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for check in sorted(checks, key=lambda c: (c.status == "pass", c.rule.name)):
        value = f"{fmt_num(check.value)}{check.rule.unit}" if check.value is not None else "–"
        table.add_row(escape(check.rule.name), value, check.rule.bound, f"[{_STYLE[check.status]}]{check.status}[/]")
    return table


def regressions_table(report: GateReport) -> Table:
    table = Table(
        title=f"regression rules: {_judged(report)} vs the baseline runs', machine speed factor "
        f"{report.speed:.2f}; change with its {1 - 2 * report.alpha:.2%} prediction interval from the baseline "
        f"runs' spread (false-alarm rate ≤ {report.baseline.family_alpha:.0%} for the whole gate)"
    )
    for column in ("rule", "statistic", "run", "baseline runs", "change [interval]", "floor", "result"):
        table.add_column(column, justify="left" if column in ("rule", "result") else "right")
    for check in report.regressions:
        table.add_row(*_regression_cells(check))
    return table


def _judged(report: GateReport) -> str:
    if report.runs == 1:
        return "the run's statistic"
    return f"the geometric mean of {report.runs} runs' statistics"


def _regression_cells(check: RegressionCheck) -> tuple[str, ...]:
    rule, comparison = check.rule, check.comparison
    result = f"[{_STYLE[check.status]}]{'no regression' if check.status == 'pass' else check.status}[/]"
    if check.note:
        result += f" ({escape(check.note)})"
    if comparison is None:
        statistic = statistic_name(rule.quantile)
        return escape(rule.label), statistic, "–", "–", "–", f"{rule.min_effect_pct:.0f} %", result
    return (
        escape(rule.label),
        comparison.statistic,
        f"{fmt_num(comparison.run_value)}{rule.unit}",
        f"{fmt_num(comparison.baseline_value)}{rule.unit} ({comparison.runs})",
        comparison.describe(),
        f"{comparison.floor * 100:.0f} %",
        result,
    )


def checks_table(report: GateReport) -> Table:
    """The contract limits; ``regressions_table`` shows the regression rules."""
    return limits_table(report.limits, f"gate: {report.baseline.profile}")


def print_report(console: Console, report: GateReport, path: Path) -> None:
    console.print(checks_table(report))
    if report.regressions:
        console.print(regressions_table(report))
        for check in report.regressions:
            if check.comparison is not None:
                console.print(f"  {escape(check.line())}")
    if report.busy:
        verdict = (
            "--strict: regressions fail anyway."
            if report.strict
            else f"{len(report.inconclusive())} regression(s) are inconclusive, not failures; rerun on a quiet "
            "machine, or pass --strict. Contract limits are enforced all the same."
        )
        wait = f"{report.run_wait:.2f}" if report.run_wait is not None else "–"
        console.print(
            f"[yellow]busy machine: other processes used {report.other_cores or 0:.2f} cores and this run's "
            f"threads waited {wait} s per second for a CPU (the baseline allows: {report.baseline.busy_limit()}). "
            f"{verdict}[/]"
        )
    if report.other_machine:
        console.print(
            f"[yellow]another machine: the calibration probe ran at {report.speed:.2f}× the baseline's time (the "
            f"baseline allows ×/÷ {report.baseline.max_speed_change:g}). Rules that are not normalised (ratios to a "
            "reference, batch times) are inconclusive when they see a regression; the normalised rules are "
            "judged. Rebaseline on this machine (batchqa gate --rebaseline --collect 5) to judge them all.[/]"
        )
    if not report.ok:
        console.print(f"[bold red]gate FAILED[/] against {path}:")
        for problem in report.problems():
            console.print(f"  - {escape(problem)}")
    elif report.inconclusive():
        console.print(f"[yellow]gate passed, inconclusive[/]: contract limits hold; regressions unjudged ({path})")
    else:
        console.print(
            f"[green]gate passed[/] ({len(report.limits)} contract limits, {len(report.regressions)} "
            f"regression rules against {path})"
        )


def wide_console(*, stderr: bool = False) -> Console:
    """A console that does not squeeze the tables to 80 columns when output goes to a CI log."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def _read(paths: Sequence[Path]) -> list[RunData]:
    """Every run the paths name: a run directory each, or a set of runs from ``batchqa load --repeat K``."""
    try:
        return [run for path in paths for run in read_runs(path)]
    except RunError as error:
        raise click.ClickException(str(error)) from error


def _rebaseline(console: Console, runs: tuple[Path, ...], baseline: Path | None) -> None:
    data = _read(runs)
    path = baseline or default_baseline(data[0].profile)
    try:
        updated, notes = rebuild(Baseline.load(path), data)
    except RebaselineError as error:
        raise click.ClickException(str(error)) from error
    updated.write(path)
    console.print(f"wrote {path} from {updated.measured['runs']} runs")
    for rule in updated.regression:
        if rule.distribution is not None:
            spread = ", ".join(fmt_num(m) for m in rule.distribution.run_values)
            console.print(f"  {rule.title}: n={rule.distribution.n}, each run's value: {spread}")
    for note in notes:
        console.print(f"[yellow]{escape(note)}[/]")


@click.command("gate")
@click.option(
    "--run",
    "run_paths",
    type=click.Path(path_type=Path),
    multiple=True,
    default=(DEFAULT_RUN,),
    show_default=True,
    help="A run directory (or its summary.json) from `batchqa load` or `batchqa scaling`, or the set of runs "
    "`batchqa load --repeat K` wrote. Repeat it, or give a set, to judge K runs together: each regression rule "
    "then judges the geometric mean of their statistics, whose spread is 1/sqrt(K) of one run's.",
)
@click.option(
    "--baseline", type=click.Path(path_type=Path), default=None, help="Default fixtures/baselines/PROFILE.json."
)
@click.option("--history", type=click.Path(path_type=Path), default=DEFAULT_HISTORY, show_default=True)
@click.option("--record/--no-record", default=True, show_default=True, help="Append this run to the history.")
@click.option(
    "--trend/--no-trend",
    "with_trend",
    default=True,
    show_default=True,
    help="After recording, redraw the change points in a trend/ folder beside the history (batchqa trend).",
)
@click.option("--strict", is_flag=True, help="Fail regressions even when the machine was busy.")
@rolling_option(
    f"Judge regression rules against the last N clean runs in --history (same profile, target and baseline; "
    f"at least {MIN_RUNS}) instead of the baseline file's runs; 0 = the baseline file. For a runner that gates "
    "every night: it follows the machine's drift."
)
@click.option(
    "--min-effect",
    "min_effect_pct",
    type=click.FloatRange(min=0),
    default=None,
    help="Raise every regression rule's effect-size floor to this percent (100 = only a 2x slowdown fails).",
)
@click.option(
    "--rebaseline",
    is_flag=True,
    help=f"Instead of gating: rebuild the baseline's distributions from {MIN_RUNS}+ runs (--from or --collect).",
)
@click.option(
    "--from",
    "rebaseline_runs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="With --rebaseline: a run directory to build from (repeat).",
)
@click.option(
    "--collect",
    type=click.IntRange(min=1),
    default=None,
    help="With --rebaseline: run the profile this many times first (each after a quiet spell) and build from them.",
)
@click.option("--profile", "profile_name", default="smoke", show_default=True, help="With --collect.")
def gate_command(
    run_paths: tuple[Path, ...],
    baseline: Path | None,
    history: Path,
    record: bool,
    with_trend: bool,
    strict: bool,
    window: int,
    min_effect_pct: float | None,
    rebaseline: bool,
    rebaseline_runs: tuple[Path, ...],
    collect: int | None,
    profile_name: str,
) -> None:
    """Hold a run to its baseline: contract limits always; regression rules by comparing the run's samples
    with the baseline's distribution. Exit 1 when a limit is breached or a regression is shown."""
    console = wide_console()
    if rebaseline:
        if collect:
            from utilities.perf.gate_audit import collect_runs

            path = baseline or default_baseline(profile_name)
            rebaseline_runs += tuple(collect_runs(profile_name, collect, Baseline.load(path), console=console))
        if not rebaseline_runs:
            raise click.UsageError("--rebaseline needs runs: --from RUN (repeat) or --collect N")
        _rebaseline(console, rebaseline_runs, baseline)
        return
    if rebaseline_runs or collect:
        raise click.UsageError("--from and --collect go with --rebaseline")
    runs = _read(run_paths)
    run = runs[0]
    if len({r.profile for r in runs}) > 1:
        raise click.UsageError(f"runs of different profiles: {sorted({r.profile for r in runs})}")
    path = baseline or default_baseline(run.profile)
    if not path.exists():
        raise click.ClickException(f"no baseline for profile {run.profile!r} at {path}")
    judged_by = Baseline.load(path)
    if window:
        if window < MIN_RUNS:
            raise click.UsageError(f"--rolling needs at least {MIN_RUNS} runs, not {window}")
        judged_by, notes = rolling_baseline(judged_by, read_history(history), window, target=run.summary.get("target"))
        console.print(f"rolling baseline from {history}:")
        for note in notes:
            console.print(f"  {escape(note)}")
    report = gate_run(runs, judged_by, strict=strict, min_effect_pct=min_effect_pct)
    print_report(console, report, path)
    if record:
        for index, each in enumerate(runs):
            append_history(history, history_entry(each, report, index))
        if with_trend:
            from utilities.perf.trend import series, write_trend

            write_trend(series(read_history(history)), history.parent / "trend")
    if not report.ok:
        raise SystemExit(1)


if __name__ == "__main__":
    gate_command()
