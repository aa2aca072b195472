"""A module over ~400 lines usually holds two jobs: none in the kit's library, the reference backend, the Locust
files or the page objects may grow past that. (Test files are left out: a test file holds one area's cases.)"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.area("Kit conventions")

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("utilities", "reference_backend", "perf", "page_objects")
MAX_LINES = 400


def too_long(root: Path, packages: tuple[str, ...], limit: int) -> dict[str, int]:
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > limit:
                found[path.relative_to(root).as_posix()] = lines
    return found


def test_no_module_holds_more_than_four_hundred_lines() -> None:
    assert too_long(ROOT, PACKAGES, MAX_LINES) == {}


def test_the_check_sees_a_module_that_grew(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "big.py").write_text("x = 1\n" * (MAX_LINES + 1), encoding="utf-8")
    (tmp_path / "pkg" / "fine.py").write_text("x = 1\n" * MAX_LINES, encoding="utf-8")
    assert too_long(tmp_path, ("pkg",), MAX_LINES) == {"pkg/big.py": MAX_LINES + 1}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_is_looked_at(package: str) -> None:
    assert list((ROOT / package).rglob("*.py")), package
