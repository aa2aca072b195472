"""``batchqa selfcheck``: run the black-box suites once per known fault of the bundled backend and show which
suite caught it, with the first test that failed.

Each fault of the backend's catalogue (``BATCHQA_FAULTS``; the latency faults, which break no contract
promise, are left out) gets a bundled backend of its own, slowed down as the suites expect, and every chosen
suite runs against it through ``--base-url`` with ``-x`` and a JUnit XML. A run with no fault comes first:
the suites must pass there, or the matrix proves nothing. The matrix (fault x suite) goes to the terminal,
``reports/selfcheck/`` (JSON and Markdown) and, with ``--alluredir``, the Allure results. The exit code is
non-zero when a fault is caught by no suite or the fault-free run fails.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from utilities.paths import REPO_ROOT
from utilities.procs.backend import E2E_BACKEND_ENV, BackendProcess

log = logging.getLogger(__name__)

SUITES = {"api": "e2e/api", "sockets": "e2e/sockets", "browser": "e2e/browser"}
NO_FAULT = "(none)"
SUITE_TIMEOUT_S = 1800


@dataclass
class Cell:
    """One suite's run against one fault: ``first_failure`` is the node id of the first test that failed."""

    fault: str
    suite: str
    exit_code: int
    passed: int
    failed: int
    skipped: int
    seconds: float
    first_failure: str | None = None
    message: str | None = None

    @property
    def caught(self) -> bool:
        return self.first_failure is not None

    @property
    def broken(self) -> bool:
        """pytest itself failed (usage error, crash, timeout) before any test did: the run says nothing.

        Under xdist, ``-x`` ends the run as "interrupted" (exit 2) once a test fails; that run did catch.
        """
        return self.exit_code not in (0, 1) and self.first_failure is None


@dataclass
class Matrix:
    suites: list[str]
    cells: list[Cell]

    def row(self, fault: str) -> dict[str, Cell]:
        return {cell.suite: cell for cell in self.cells if cell.fault == fault}

    @property
    def faults(self) -> list[str]:
        return list(dict.fromkeys(cell.fault for cell in self.cells))

    def uncaught(self) -> list[str]:
        return [f for f in self.faults if f != NO_FAULT and not any(c.caught for c in self.row(f).values())]

    def problems(self) -> list[str]:
        found = [f"fault {f} was caught by no suite" for f in self.uncaught()]
        found += [
            f"the suites fail against the correct backend: {c.suite}: {c.first_failure}"
            for c in self.row(NO_FAULT).values()
            if c.caught
        ]
        found += [f"{c.fault} x {c.suite}: pytest exited {c.exit_code}: {c.message}" for c in self.cells if c.broken]
        return found

    def markdown(self) -> str:
        head = "| fault | " + " | ".join(self.suites) + " |"
        lines = [head, "|" + "---|" * (len(self.suites) + 1)]
        for fault in self.faults:
            row = self.row(fault)
            cells = [_cell_text(row.get(suite)) for suite in self.suites]
            lines.append(f"| {fault} | " + " | ".join(cells) + " |")
        total = len([f for f in self.faults if f != NO_FAULT])
        caught = total - len(self.uncaught())
        lines += ["", f"Caught: {caught} of {total} faults."]
        if problems := self.problems():
            lines += ["", "Problems:", *[f"- {p}" for p in problems]]
        return "\n".join(lines) + "\n"


def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "–"
    if cell.broken:
        return f"error (exit {cell.exit_code})"
    if cell.caught:
        return f"**caught** by `{cell.first_failure}`"
    return f"passed ({cell.passed} tests, {cell.skipped} skipped)"


def contract_faults() -> list[str]:
    """The catalogue's faults that break a contract promise (the valued latency faults do not)."""
    from reference_backend.faults import CATALOGUE

    return [name for name, fault in CATALOGUE.items() if not fault.takes_value]


def first_failure(junit: Path) -> tuple[str | None, str | None, dict[str, int]]:
    """The first failed or errored test case of a JUnit XML (node id and message), and the counts."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    if not junit.exists():
        return None, None, counts
    found: tuple[str | None, str | None] = (None, None)
    for case in ET.parse(junit).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            counts["failed"] += 1
            if found[0] is None:
                nodeid = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
                found = (nodeid, (problem.get("message") or "")[:500])
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return found[0], found[1], counts


def run_suite(
    fault: str, suite: str, url: str, server_log: Path, out: Path, workers: int, extra: tuple[str, ...] = ()
) -> Cell:
    junit = out / "junit" / f"{_slug(fault)}--{suite}.xml"
    junit.parent.mkdir(parents=True, exist_ok=True)
    profile = out / "profiles" / f"{_slug(fault)}.json"
    profile.parent.mkdir(parents=True, exist_ok=True)
    profile.write_text(json.dumps({"name": f"selfcheck {fault}", "server_log": str(server_log)}), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "pytest",
        SUITES[suite],
        "--base-url",
        url,
        "--target-profile",
        str(profile),
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        *(["-n", str(workers)] if workers > 1 else []),
        *extra,
    ]
    started = time.monotonic()
    output = out / "logs" / f"{_slug(fault)}--{suite}.txt"
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as sink:
        try:
            code = subprocess.run(
                command, cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT, timeout=SUITE_TIMEOUT_S
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
    nodeid, message, counts = first_failure(junit)
    return Cell(
        fault,
        suite,
        code,
        counts["passed"],
        counts["failed"],
        counts["skipped"],
        round(time.monotonic() - started, 1),
        nodeid,
        message if nodeid else (None if code in (0, 1) else output.read_text(encoding="utf-8")[-500:]),
    )


def _slug(fault: str) -> str:
    return "no-fault" if fault == NO_FAULT else fault


def run_matrix(
    faults: list[str], suites: list[str], out: Path, *, workers: int, baseline: bool, extra: tuple[str, ...] = ()
) -> Matrix:
    cells = []
    for fault in ([NO_FAULT] if baseline else []) + faults:
        env = dict(E2E_BACKEND_ENV)
        if fault != NO_FAULT:
            env["BATCHQA_FAULTS"] = fault
        with tempfile.TemporaryDirectory(prefix=f"selfcheck-{_slug(fault)}-") as data_dir:
            server = BackendProcess(Path(data_dir), env=env)
            server.start()
            try:
                for suite in suites:
                    assert server.url is not None
                    cell = run_suite(fault, suite, server.url, server.log_path, out, workers, extra)
                    log.info("%s x %s: %s", fault, suite, _cell_text(cell))
                    click.echo(f"{fault} x {suite}: {_cell_text(cell)} in {cell.seconds:.0f} s")
                    cells.append(cell)
            finally:
                server.stop()
    return Matrix(suites, cells)


def write_reports(matrix: Matrix, out: Path, alluredir: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    body = {"suites": matrix.suites, "cells": [asdict(c) | {"caught": c.caught} for c in matrix.cells]}
    (out / "selfcheck.json").write_text(
        json.dumps(body | {"uncaught": matrix.uncaught(), "problems": matrix.problems()}, indent=2), encoding="utf-8"
    )
    markdown = "# Self-check: which black-box suite catches which fault\n\n" + matrix.markdown()
    (out / "selfcheck.md").write_text(markdown, encoding="utf-8")
    if alluredir is not None:
        write_allure_result(matrix, markdown, alluredir)


def write_allure_result(matrix: Matrix, markdown: str, results: Path) -> None:
    """One Allure test result, passed when every fault was caught, with the matrix attached."""
    results.mkdir(parents=True, exist_ok=True)
    result_id = str(uuid.uuid4())
    attachment = f"{uuid.uuid4()}-attachment.md"
    (results / attachment).write_text(markdown, encoding="utf-8")
    now = int(time.time() * 1000)
    problems = matrix.problems()
    result = {
        "uuid": result_id,
        "historyId": "batchqa.selfcheck",
        "fullName": "selfcheck#matrix",
        "name": "Self-check: every known fault is caught by a black-box suite",
        "status": "failed" if problems else "passed",
        "statusDetails": {"message": "; ".join(problems)} if problems else {},
        "start": now,
        "stop": now,
        "labels": [
            {"name": "epic", "value": "US-003 Batch processing"},
            {"name": "feature", "value": "Self-check"},
            {"name": "suite", "value": "selfcheck"},
        ],
        "attachments": [{"name": "fault x suite matrix", "source": attachment, "type": "text/markdown"}],
    }
    (results / f"{result_id}-result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")


@click.command()
@click.option(
    "--suites", default="api,sockets,browser", show_default=True, help="Comma-separated: api, sockets, browser."
)
@click.option("--faults", default=None, help="Comma-separated fault names (default: every contract fault).")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports/selfcheck"), show_default=True
)
@click.option("--alluredir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Allure results dir.")
@click.option("-n", "--workers", type=int, default=1, show_default=True, help="pytest-xdist workers per suite run.")
@click.option("--pytest-arg", "pytest_args", multiple=True, help="Passed to every pytest run (e.g. --deselect=ID).")
@click.option("--baseline/--no-baseline", default=True, show_default=True, help="Run the suites without a fault first.")
def selfcheck_command(
    suites: str,
    faults: str | None,
    out: Path,
    alluredir: Path | None,
    workers: int,
    pytest_args: tuple[str, ...],
    baseline: bool,
) -> None:
    """Run the black-box suites once per known backend fault; print and save the fault x suite matrix."""
    chosen = [s.strip() for s in suites.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SUITES]
    if unknown or not chosen:
        raise click.BadParameter(f"unknown suite(s) {unknown}; choose from {sorted(SUITES)}", param_hint="--suites")
    known = contract_faults()
    wanted = [f.strip() for f in faults.split(",") if f.strip()] if faults else known
    if bad := [f for f in wanted if f not in known]:
        raise click.BadParameter(f"unknown fault(s) {bad}; known: {', '.join(known)}", param_hint="--faults")
    matrix = run_matrix(wanted, chosen, out, workers=workers, baseline=baseline, extra=pytest_args)
    write_reports(matrix, out, alluredir)
    click.echo(matrix.markdown())
    click.echo(f"written to {out / 'selfcheck.md'} and {out / 'selfcheck.json'}")
    if matrix.problems():
        sys.exit(1)


__all__ = [
    "NO_FAULT",
    "SUITES",
    "Cell",
    "Matrix",
    "contract_faults",
    "first_failure",
    "run_matrix",
    "selfcheck_command",
]
