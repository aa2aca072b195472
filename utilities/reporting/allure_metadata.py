"""What an Allure results directory holds besides the results: ``categories.json`` (which failures are the
infrastructure's, which the product's) and ``environment.properties``; the plugin writes both at the end of a
pytest session."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Allure 2 "compatibility" rules, which Allure 3 also reads (as its `categories` config). The first rule that
# matches a test wins, so infrastructure comes before the product. Patterns are searched in Allure 3 but must
# match the whole text in Allure 2 (Java), hence the [\s\S]* on both sides.
_ANY = r"[\s\S]*"
INFRASTRUCTURE = (
    r"ECONNREFUSED|Connection refused|ConnectError|ConnectTimeout|net::ERR_CONNECTION_(?:REFUSED|RESET)"
    r"|backend did not report its URL|never became healthy"
    r"|BrowserType\.launch|Executable doesn't exist|Target page, context or browser has been closed"
    r"|Browser(?: has been)? closed|Connection closed while reading from the driver"
    r"|No space left on device|Too many open files|Address already in use|Cannot allocate memory"
    r"|redis\.exceptions\.ConnectionError|psycopg\.OperationalError|EndpointConnectionError"
    r"|BATCHQA_REQUIRE_SERVICES is set"
)
TIMEOUTS = r"Timeout \d+ms exceeded|TimeoutError|Failed: Timeout >"
CATEGORIES: list[dict[str, Any]] = [
    {
        "name": "Infrastructure problems",
        "description": "The machine, the browser or a server the tests need did not start, answer or stay up: "
        "connection refused, a browser that would not launch, the bundled backend that never became healthy, "
        "a missing Redis/PostgreSQL/S3. Rerun before reading anything into it.",
        "matchedStatuses": ["broken", "failed"],
        "messageRegex": f"{_ANY}(?:{INFRASTRUCTURE}){_ANY}",
    },
    {
        "name": "Product did not get there in time",
        "description": "A wait ran out: the page or the batch never reached the state the test waited for "
        "(Playwright timeouts, pytest-timeout). Usually the product; the trace and screenshot say which state "
        "it was stuck in.",
        "matchedStatuses": ["broken", "failed"],
        "messageRegex": f"{_ANY}(?:{TIMEOUTS}){_ANY}",
    },
    {
        "name": "Product defects",
        "description": "A check on what the product did failed (assert, Playwright expect, a validator): "
        "the product behaved differently from US-003 and docs/contract.md.",
        "matchedStatuses": ["failed"],
    },
    {
        "name": "Test defects",
        "description": "The test code or a fixture raised (TypeError, AttributeError, KeyError, a fixture error): "
        "fix the kit, not the product.",
        "matchedStatuses": ["broken"],
    },
]


def write_categories(results: Path) -> Path:
    path = results / "categories.json"
    path.write_text(json.dumps(CATEGORIES, indent=2) + "\n", encoding="utf-8")
    return path


def _escape_property(text: str, *, key: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "")
    if key:
        for char in (" ", ":", "=", "#", "!"):
            text = text.replace(char, f"\\{char}")
    return text


def write_environment(results: Path, values: Mapping[str, str]) -> Path:
    """``environment.properties`` (Java properties format, which both Allure 2 and 3 read)."""
    lines = [f"{_escape_property(k, key=True)}={_escape_property(str(v), key=False)}" for k, v in values.items()]
    path = results / "environment.properties"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
