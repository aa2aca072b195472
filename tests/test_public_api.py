"""Every role package's ``__all__`` names something that exists: the lazy faces map names to modules by string,
so a moved or renamed function would otherwise fail only when someone first uses it."""

from __future__ import annotations

import importlib

import pytest

pytestmark = pytest.mark.area("Kit conventions")

PACKAGES = [
    "utilities.client",
    "utilities.check",
    "utilities.gen",
    "utilities.perf",
    "utilities.procs",
    "utilities.reporting",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, f"{package} names no public API"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
