"""The import-linter contracts in pyproject.toml hold for the tree, and break on an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = [
    pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="lint-imports not installed (make setup)"),
    pytest.mark.area("Kit conventions"),
]


def _lint_imports(cwd: Path, *, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else None
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _contracts() -> list[dict[str, Any]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def _toml_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_the_tree_keeps_every_contract() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_cover_the_layers_and_the_boundaries() -> None:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for contract in _contracts():
        by_type.setdefault(contract["type"], []).append(contract)
    (layers,) = by_type["layers"]
    assert layers["containers"] == ["utilities"]
    assert [set(layer.split(" | ")) for layer in layers["layers"]] == [
        {"cli", "pytest_plugin"},
        {"qa", "selfcheck"},
        {"reporting"},
        {"perf"},
        {"gen", "check"},
        {"client", "procs"},
        {"paths"},
    ]
    forbidden = {tuple(c["source_modules"]): set(c["forbidden_modules"]) for c in by_type["forbidden"]}
    assert {"utilities", "page_objects", "e2e", "perf"} <= forbidden[("reference_backend",)]
    assert {"e2e", "tests", "perf"} <= forbidden[("utilities",)]
    assert "reference_backend" in forbidden[("page_objects",)]


@pytest.mark.parametrize(
    ("module", "upward_import", "broken"),
    [
        ("utilities/client/_probe.py", "import utilities.cli", "utilities: cli > qa"),
        ("utilities/procs/_probe.py", "from utilities.client import api", "utilities: cli > qa"),
        ("utilities/gen/_probe.py", "from utilities.perf import load", "utilities: cli > qa"),
        ("utilities/perf/_probe.py", "import perf.locustfile", "utilities imports no suites"),
    ],
    ids=[
        "client-imports-cli",
        "procs-imports-client",
        "gen-imports-perf",
        "utilities-imports-locust-files",
    ],
)
def test_an_upward_import_breaks_a_contract(tmp_path: Path, module: str, upward_import: str, broken: str) -> None:
    # The real contracts over a copy of utilities/ and perf/: kept as they are, broken by one upward import.
    for package in ("utilities", "perf"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    contracts = [c for c in _contracts() if ["utilities"] in (c.get("containers"), c.get("source_modules"))]
    roots = {"utilities", "perf"} | {name for c in contracts for name in c.get("forbidden_modules", [])}
    for stub in roots - {"utilities", "perf"}:
        (tmp_path / stub).mkdir()
        (tmp_path / stub / "__init__.py").write_text("", encoding="utf-8")
    lines = ["[tool.importlinter]", f"root_packages = {_toml_value(sorted(roots))}", ""]
    for contract in contracts:
        lines.append("[[tool.importlinter.contracts]]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in contract.items()]
        lines.append("")
    (tmp_path / "pyproject.toml").write_text("\n".join(lines), encoding="utf-8")
    clean = _lint_imports(tmp_path, pythonpath=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    (tmp_path / module).write_text(f'"""An upward import."""\n\n{upward_import}\n', encoding="utf-8")
    result = _lint_imports(tmp_path, pythonpath=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in result.stdout and "BROKEN" in result.stdout
    assert module.removesuffix(".py").replace("/", ".") in result.stdout


def test_blob_storage_importing_the_web_framework_breaks_its_contract(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "reference_backend", tmp_path / "reference_backend", ignore=shutil.ignore_patterns("__pycache__")
    )
    [contract] = [c for c in _contracts() if c.get("source_modules") == ["reference_backend.originals"]]
    lines = ["[tool.importlinter]", 'root_packages = ["reference_backend"]', "include_external_packages = true", ""]
    lines.append("[[tool.importlinter.contracts]]")
    lines += [f"{key} = {_toml_value(value)}" for key, value in contract.items()]
    (tmp_path / "pyproject.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    clean = _lint_imports(tmp_path, pythonpath=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    originals = tmp_path / "reference_backend" / "originals.py"
    originals.write_text(originals.read_text(encoding="utf-8") + "\nfrom starlette.requests import Request\n")
    result = _lint_imports(tmp_path, pythonpath=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the stored originals take bytes" in result.stdout and "BROKEN" in result.stdout
