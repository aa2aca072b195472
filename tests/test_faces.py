"""Each role package of utilities names its public API, and every name it names loads."""

from __future__ import annotations

import importlib

import pytest

pytestmark = pytest.mark.area("Kit conventions")

PACKAGES = ["client", "check", "gen", "procs", "perf", "reporting"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_of_a_face_loads(package: str) -> None:
    face = importlib.import_module(f"utilities.{package}")
    assert face.__all__, f"utilities.{package} names no public API"
    missing = [name for name in face.__all__ if getattr(face, name, None) is None]
    assert missing == []


def test_a_name_the_face_does_not_hold_is_an_attribute_error() -> None:
    face = importlib.import_module("utilities.client")
    with pytest.raises(AttributeError, match=r"utilities\.client' has no attribute 'no_such_name'"):
        face.no_such_name  # noqa: B018
