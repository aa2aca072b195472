"""Browser suite fixtures: Chromium, failure artefacts, a signed-in page and the page objects."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from page_objects import (
    BatchListPage,
    BatchUploadPage,
    LoginPage,
    NotificationBell,
    NotificationPreferencesPage,
    ProgressTracker,
    ResultsDownloader,
)
from utilities.procs.browser import SYSTEM_ARGS, Chromium, find_chromium

from ..harness import User

SESSION_COOKIE = "batchqa_session"  # docs/contract.md, "Auth"
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


@pytest.fixture
def signed_in_page(page: Page, user: User, base_url: str) -> Page:
    """A page whose context holds the user's session, as after a login.

    The contract's login sets the HttpOnly cookie ``batchqa_session`` to the bearer token it returns, so the
    token of the user's API login is put into the cookie jar directly: one password check per test, not two
    (Argon2 is slow on purpose). The login page itself is covered by the happy-path test.
    """
    page.context.add_cookies(
        [
            {
                "name": SESSION_COOKIE,
                "value": user.api.token or "",
                "url": base_url,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )
    return page


@pytest.fixture
def login_page(page: Page) -> LoginPage:
    return LoginPage(page)


@pytest.fixture
def upload_page(signed_in_page: Page) -> BatchUploadPage:
    upload = BatchUploadPage(signed_in_page)
    upload.open()
    return upload


@pytest.fixture
def tracker(signed_in_page: Page) -> ProgressTracker:
    return ProgressTracker(signed_in_page)


@pytest.fixture
def downloader(signed_in_page: Page, tmp_path: Path) -> ResultsDownloader:
    return ResultsDownloader(signed_in_page, tmp_path / "downloads")


@pytest.fixture
def batch_list(signed_in_page: Page) -> BatchListPage:
    return BatchListPage(signed_in_page)


@pytest.fixture
def bell(signed_in_page: Page) -> NotificationBell:
    return NotificationBell(signed_in_page)


@pytest.fixture
def preferences_page(signed_in_page: Page) -> NotificationPreferencesPage:
    return NotificationPreferencesPage(signed_in_page)
