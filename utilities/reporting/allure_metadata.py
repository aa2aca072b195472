"""What an Allure results directory holds besides the results: ``categories.json`` (which failures are the
infrastructure's, which the product's) and ``environment.properties`` (what ran against what, gathered from the
pytest session); the plugin writes both at the end of a session."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

BROWSER_VERSION = pytest.StashKey[str]()  # the browser's version, once a test has launched it

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


def session_environment(session: pytest.Session) -> dict[str, str]:
    """What ran and against what: target, backend mode, Python and the test packages, browser, commit."""
    import platform
    from importlib import metadata

    config = session.config
    base_url = _target(config)
    # Under xdist the controller has no items; the workers ran the browser (or did not).
    uses_browser = bool(config.getoption("numprocesses", None)) or any(
        "page" in getattr(item, "fixturenames", ()) for item in session.items
    )
    environment = {
        "Target": base_url or "bundled reference backend",
        "Backend mode": _backend_mode(base_url),
        "Python": platform.python_version(),
    }
    for package in ("pytest", "playwright", "pytest-playwright", "allure-pytest"):
        try:
            environment[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    if uses_browser:
        environment["Browser"] = config.stash.get(BROWSER_VERSION, None) or _browser_version()
        kept = [
            kind for kind in ("tracing", "screenshot", "video") if config.getoption(kind, "off") not in ("off", None)
        ]
        environment["Failure artefacts"] = ", ".join(kept).replace("tracing", "trace") or "none"
    environment["Machine"] = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    environment["Run"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    if commit := _git_commit(Path(config.rootpath)):
        environment["Commit"] = commit
    return environment


def _target(config: pytest.Config) -> str | None:
    """``--base-url`` or the ``base_url`` ini value (pytest-base-url's), as the plugin's fixtures read them."""
    given = config.getoption("base_url", None)
    if not given:
        try:
            given = config.getini("base_url")
        except ValueError:  # pytest-base-url not loaded
            given = None
    return given or None


def _backend_mode(base_url: str | None) -> str:
    """Short: the report shows the first ~35 characters of a value before "Show more"."""
    if base_url:
        return "external deployment (contract only)"
    database = os.environ.get("BATCHQA_DATABASE_URL", "")
    store = database.split(":", 1)[0].split("+", 1)[0] if database else "SQLite"
    return f"embedded ({store}, in-process workers)"


def _browser_version() -> str:
    import subprocess

    from utilities.procs.browser import find_chromium

    found = find_chromium()
    if found is None:
        return "none found"
    try:
        out = subprocess.run([str(found.path), "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    return f"{out.strip() or found.path} ({found.kind})"


def _git_commit(root: Path) -> str | None:
    import subprocess

    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")
