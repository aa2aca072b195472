"""The contract's JSON Schemas (``fixtures/schemas``) and a check that a body conforms to one."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from utilities.paths import SCHEMA_DIR

BASE = "https://batchqa.local/schemas/"


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Draft202012Validator:
    """``name`` is the file stem without ``.schema.json``, e.g. ``batch_status``."""
    schema = _registry().contents(f"{BASE}{name}.schema.json")
    return Draft202012Validator(schema, registry=_registry(), format_checker=FormatChecker())


def schema_problems(name: str, body: Any) -> list[str]:
    """Every way ``body`` breaks the schema, each with its JSON path; empty when it conforms."""
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator(name).iter_errors(body), key=lambda e: list(e.absolute_path))
    ]


def assert_matches_schema(name: str, body: Any) -> None:
    problems = schema_problems(name, body)
    if problems:
        raise AssertionError(f"body breaks the {name} schema:\n  " + "\n  ".join(problems))
