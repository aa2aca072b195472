"""The committed fixtures' generator releases: pinned in constraints/fixtures.txt, bounded in pyproject.toml."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from utilities.gen.fixtures import PINS_FILE, release_mismatches

ROOT = Path(__file__).resolve().parents[1]


def test_runtime_dependencies_carry_bounds_and_the_pins_live_in_the_constraints_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    assert not [d for d in declared if "==" in d], "exact pins belong in constraints/fixtures.txt"
    pins = PINS_FILE.read_text(encoding="utf-8")
    assert "faker==" in pins and "openpyxl==" in pins


def test_this_environment_has_the_pinned_releases() -> None:
    assert release_mismatches() == []


def test_a_different_release_is_named(tmp_path: Path) -> None:
    pins = tmp_path / "pins.txt"
    pins.write_text("# comment\nfaker==0.0.1\nopenpyxl==" + metadata.version("openpyxl") + "\n", encoding="utf-8")
    (problem,) = release_mismatches(pins)
    assert problem.startswith(f"faker {metadata.version('faker')} is installed, the fixtures were made with 0.0.1")
    assert release_mismatches(tmp_path / "absent.txt") == []
