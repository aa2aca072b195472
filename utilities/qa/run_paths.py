"""Where one ``make qa`` run keeps what its stages write (under ``reports/``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Paths:
    out: Path

    @property
    def qa(self) -> Path:
        return self.out / "qa"

    @property
    def allure_results(self) -> Path:
        return self.out / "allure-results"

    @property
    def allure_html(self) -> Path:
        return self.out / "allure" / "index.html"

    @property
    def perf_run(self) -> Path:
        return self.out / "perf" / "smoke"

    @property
    def e2e_junit(self) -> Path:
        return self.qa / "e2e-junit.xml"

    @property
    def gate_output(self) -> Path:
        return self.qa / "gate.txt"
