"""A load run as the gate reads it: its summary, its calibration and its per-request samples by series."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from utilities.perf.calibration import Calibration
from utilities.perf.gate_verdicts import RunInput
from utilities.perf.idle_probe import IDLE_FILE, idle_samples
from utilities.perf.live_probe import PAIRED_SUFFIX, PROBE_FILE, paired_ratios, read_reference

log = logging.getLogger(__name__)

SAMPLES_FILE = "samples.csv"


class RunError(ValueError):
    """A run directory the gate cannot read."""


@dataclass
class RunData:
    path: Path
    summary: dict[str, Any]
    samples: dict[str, np.ndarray]

    @property
    def profile(self) -> str:
        return self.summary["profile"]["name"]

    @property
    def metrics(self) -> dict[str, float]:
        return self.summary.get("metrics", {})

    @property
    def calibration(self) -> Calibration | None:
        data = self.summary.get("calibration")
        return Calibration.from_dict(data) if data else None

    def gate_input(self) -> RunInput:
        return RunInput(self.metrics, self.samples, self.calibration)

    @property
    def other_cores(self) -> float | None:
        value = self.metrics.get("host_other_cores")
        return None if value is None else float(value)


def summary_path(run: Path) -> Path:
    return run / "summary.json" if run.is_dir() else run


def read_run(run: Path) -> RunData:
    """The run's summary and samples: ``samples.csv`` (exact, successful requests only) or, for a run
    without it, Locust's rounded histograms in ``locust.json``."""
    path = summary_path(run)
    if not path.exists():
        raise RunError(f"no run summary at {path}; run `batchqa load` (or `batchqa scaling`) first")
    summary = json.loads(path.read_text(encoding="utf-8"))
    directory = path.parent
    return RunData(directory, summary, read_samples(directory))


REPEAT_PREFIX = "run-"  # ``batchqa load --repeat K`` writes OUT/run-1 ... OUT/run-K


def repeat_option(help_text: str) -> Any:
    """``--repeat K`` (runs per set), for ``batchqa load`` and ``batchqa gate-audit``."""
    return click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True, help=help_text)


def repeat_directory(out: Path, number: int) -> Path:
    return out / f"{REPEAT_PREFIX}{number}"


def read_runs(path: Path) -> list[RunData]:
    """A run directory (or its summary.json), or a set of runs that ``batchqa load --repeat K`` wrote into one
    directory (``run-1`` ... ``run-K``): the gate judges a set's runs together."""
    if summary_path(path).exists():
        return [read_run(path)]
    members = repeat_runs(path)
    if not members:
        raise RunError(f"no run summary at {summary_path(path)}; run `batchqa load` (or `batchqa scaling`) first")
    return [read_run(d) for d in members]


def repeat_runs(path: Path) -> list[Path]:
    """The runs of a set (``run-1`` ... ``run-K`` that hold a summary), in order; empty for a single run."""
    numbered = {int(d.name[len(REPEAT_PREFIX) :]): d for d in path.glob(f"{REPEAT_PREFIX}*") if _numbered(d.name)}
    return [numbered[n] for n in sorted(numbered) if summary_path(numbered[n]).exists()]


def _numbered(name: str) -> bool:
    return name.startswith(REPEAT_PREFIX) and name[len(REPEAT_PREFIX) :].isdigit()


def read_samples(directory: Path) -> dict[str, np.ndarray]:
    exact = directory / SAMPLES_FILE
    if exact.exists():
        table = pd.read_csv(exact, dtype={"type": str, "name": str, "variant": str}, keep_default_na=False)
        table = table[table["ok"] == 1]
        series = table["type"] + " " + table["name"]
        # Requests of one endpoint that differ in kind (upload sizes) also form a series each: "NAME [variant]".
        varied = table["variant"] != ""
        named = pd.concat([series, series[varied] + " [" + table.loc[varied, "variant"] + "]"])
        rows = pd.concat([table, table[varied]])
        samples = {name: group["ms"].to_numpy(dtype=float) for name, group in rows.groupby(named.to_numpy())}
        probe = directory / PROBE_FILE
        if probe.exists():
            # Each series divided request by request by the live reference (live_probe.py): "NAME / reference".
            reference = read_reference(probe)
            for name, group in rows.groupby(named.to_numpy()):
                ratios = paired_ratios(group["t"].to_numpy(dtype=float), group["ms"].to_numpy(dtype=float), reference)
                if ratios.size:
                    samples[name + PAIRED_SUFFIX] = ratios
        if (directory / IDLE_FILE).exists():
            samples |= idle_samples(directory / IDLE_FILE)
        return samples
    histograms = directory / "locust.json"
    if not histograms.exists():
        return {}
    log.info("%s has no %s; using Locust's rounded histograms", directory, SAMPLES_FILE)
    samples = {}
    for entry in json.loads(histograms.read_text(encoding="utf-8")):
        times = entry.get("response_times", {})
        if times:
            values = [float(k) for k, n in times.items() for _ in range(int(n))]
            samples[f"{entry['method']} {entry['name']}"] = np.asarray(values)
    return samples
