"""Every self-test module declares a known Allure area where the module is: ``pytestmark = pytest.mark.area(...)``.

The modules are read as source (``ast``), not imported, so the check is quick and sees every module, collected or
not. The module's name plays no part: a renamed module keeps its area, and a new one must declare its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from utilities.reporting.allure_hooks import item_labels
from utilities.reporting.labels import SELF_TEST_AREA_NAMES, labels_for

pytestmark = pytest.mark.area("Reporting")

TESTS = Path(__file__).resolve().parent


def area_marks(path: Path) -> list[ast.Call]:
    """The ``pytest.mark.area(...)`` calls in a module's top-level ``pytestmark``."""
    marks: list[ast.Call] = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(target, ast.Name) and target.id == "pytestmark" for target in targets):
            marks += [
                call
                for call in ast.walk(value)
                if isinstance(call, ast.Call) and ast.unparse(call.func) == "pytest.mark.area"
            ]
    return marks


def declared(directory: Path = TESTS) -> dict[str, list[ast.Call]]:
    return {path.stem: area_marks(path) for path in sorted(directory.glob("test_*.py"))}


def lacking(directory: Path = TESTS) -> list[str]:
    """The test modules in ``directory`` that declare no area."""
    return [name for name, marks in declared(directory).items() if not marks]


def test_every_module_declares_its_area() -> None:
    assert lacking() == [], f"add `pytestmark = pytest.mark.area(...)`, one of {SELF_TEST_AREA_NAMES}, to: {lacking()}"


def test_a_module_without_an_area_is_found(tmp_path: Path) -> None:
    (tmp_path / "test_declares.py").write_text(
        'import pytest\n\npytestmark = pytest.mark.area("Chaos")\n', encoding="utf-8"
    )
    (tmp_path / "test_forgot.py").write_text("import pytest\n\npytestmark = [pytest.mark.slow]\n", encoding="utf-8")
    (tmp_path / "test_bare.py").write_text("def test_x():\n    pass\n", encoding="utf-8")
    (tmp_path / "helpers.py").write_text("", encoding="utf-8")
    assert lacking(tmp_path) == ["test_bare", "test_forgot"]


def test_each_declared_area_is_one_known_name() -> None:
    wrong = {
        name: [ast.unparse(mark) for mark in marks]
        for name, marks in declared().items()
        if len(marks) > 1
        or any(
            len(mark.args) != 1
            or not isinstance(mark.args[0], ast.Constant)
            or mark.args[0].value not in SELF_TEST_AREA_NAMES
            for mark in marks
        )
    }
    assert wrong == {}, f"one area per module, one of {SELF_TEST_AREA_NAMES}: {wrong}"


def test_the_declared_area_becomes_the_feature(request: pytest.FixtureRequest) -> None:
    assert item_labels(request.node).feature == "Self-tests: Reporting"  # this module's own pytestmark
    assert labels_for("tests/test_ingest_csv.py::test_x", area="API").feature == "Self-tests: API"
    assert labels_for("tests/test_ingest_csv.py::test_x").feature == "Self-tests: Other"  # the name gives none
    with pytest.raises(ValueError, match="area"):
        labels_for("tests/test_x.py::test_y", area="Misc")


def test_the_guard_reads_every_form_of_pytestmark(tmp_path: Path) -> None:
    forms = {
        "single": 'pytestmark = pytest.mark.area("Chaos")\n',
        "listed": 'pytestmark = [pytest.mark.slow, pytest.mark.area("Chaos")]\n',
        "annotated": 'pytestmark: list = [pytest.mark.area("Chaos")]\n',
        "none": "pytestmark = [pytest.mark.slow]\n",
    }
    found = {}
    for name, source in forms.items():
        (tmp_path / f"{name}.py").write_text("import pytest\n\n" + source, encoding="utf-8")
        found[name] = [ast.unparse(call.args[0]) for call in area_marks(tmp_path / f"{name}.py")]
    assert found == {"single": ["'Chaos'"], "listed": ["'Chaos'"], "annotated": ["'Chaos'"], "none": []}
