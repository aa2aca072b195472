"""Browser fixtures over pytest-playwright's ``page``: a page signed in as a fresh user, and the page objects on it."""

from __future__ import annotations

from pathlib import Path

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

from .harness import User

SESSION_COOKIE = "batchqa_session"  # docs/contract.md, "Auth"


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
