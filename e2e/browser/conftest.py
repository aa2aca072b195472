"""Browser suite settings: Chromium (the system's when Playwright's own is missing), failure artefacts, viewport.

The signed-in page and the page objects come from the kit's pytest plugin (``utilities.pytest_plugin.pages``).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from utilities.procs.browser import SYSTEM_ARGS, Chromium, find_chromium

CHROMIUM = pytest.StashKey[Chromium | None]()


def pytest_configure(config: pytest.Config) -> None:
    # Failure artefacts for the browser suite by default, as if run with --tracing retain-on-failure
    # --screenshot only-on-failure; an explicit --tracing/--screenshot (even "off") is left alone.
    for option, value in (("tracing", "retain-on-failure"), ("screenshot", "only-on-failure")):
        if getattr(config.option, option, None) == "off" and not _given(config, f"--{option}"):
            setattr(config.option, option, value)
    # Read from files only (no Playwright driver is started), so configuring stays cheap.
    config.stash[CHROMIUM] = find_chromium()


def _given(config: pytest.Config, flag: str) -> bool:
    """Whether ``flag`` was passed on the command line or in PYTEST_ADDOPTS (ini addopts set the value itself)."""
    words = [*config.invocation_params.args, *os.environ.get("PYTEST_ADDOPTS", "").split()]
    return any(word == flag or word.startswith(f"{flag}=") for word in words)


@pytest.fixture(scope="session")
def browser_type_launch_args(
    browser_type_launch_args: dict[str, Any], browser_name: str | None, pytestconfig: pytest.Config
) -> dict[str, Any]:
    """The system's Chromium when the browser is Chromium and Playwright's own build is missing; otherwise
    (``--browser firefox``, a machine that ran ``playwright install``) untouched."""
    chromium = pytestconfig.stash[CHROMIUM]
    if browser_name not in (None, "chromium") or chromium is None or chromium.kind == "playwright":
        return browser_type_launch_args
    args = [*browser_type_launch_args.get("args", []), *SYSTEM_ARGS]
    return {**browser_type_launch_args, "executable_path": str(chromium.path), "args": args}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    # A fixed viewport unless --device gave one: the device's own size and scale win.
    return {"viewport": {"width": 1280, "height": 900}, **browser_context_args, "accept_downloads": True}
