"""Packaging without building a wheel: the version, where the kit's files are found, bounds and pins."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from utilities import paths
from utilities.cli import main
from utilities.gen.fixtures import PINS_FILE, release_mismatches

pytestmark = pytest.mark.area("Kit conventions")

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


def test_version_is_the_installed_distributions() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"batchqa, version {metadata.version('batchqa')}"


def test_the_kits_files_are_found_through_their_packages() -> None:
    assert paths.SCHEMA_DIR == paths.FIXTURES_DIR / "schemas" and any(paths.SCHEMA_DIR.glob("*.schema.json"))
    assert (paths.BASELINES_DIR / "smoke.json").is_file()
    assert (paths.PERF_DIR / "locustfile.py").is_file() and (paths.PERF_DIR / "smoke.conf").is_file()
    assert (paths.SAMPLE_FILES_DIR / "valid-1000.csv").is_file()
    assert paths.REPO_ROOT == ROOT  # an editable install: the checkout itself
