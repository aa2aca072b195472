"""The bell in the header of every signed-in page: unread count, latest notifications, mark read."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page

from .steps import step

_UNREAD = re.compile(r"^Notifications, (\d+) unread$")
BATCH_URL = re.compile(r"/batches/(?!new\b)[^/?#]+$")


class NotificationBell:
    """The bell button (named "Notifications, N unread" once loaded) and the dialog it opens."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.button = page.get_by_role("button", name=_UNREAD)
        self.panel = page.get_by_role("dialog", name="Notifications")
        self.links = self.panel.get_by_role("link")
        # aria-busy is true while the bell loads the list, so "false" means it shows the server's latest answer.
        self.list = page.get_by_role("list", name="Latest notifications", include_hidden=True)
        self.settled_list = self.list.and_(page.locator('[aria-busy="false"]'))
        self.mark_all_read_button = self.panel.get_by_role("button", name="Mark all read")
        self.enable_push_button = self.panel.get_by_role("button", name="Enable browser notifications")
        self.push_state = self.panel.get_by_text(re.compile(r"^(Browser notifications are|This browser cannot) "))

    def wait_until_live(self, timeout: float = 15_000) -> None:
        """Wait until the bell hears the server over its socket (``data-mode``: connecting, live or polling)."""
        self.button.and_(self.page.locator('[data-mode="live"]')).wait_for(timeout=timeout)

    def unread_count(self, timeout: float = 15_000) -> int:
        """The count the bell's accessible name gives, once it has loaded."""
        self.button.wait_for(timeout=timeout)
        match = _UNREAD.match(self.button.get_attribute("aria-label") or "")
        if match is None:  # cannot happen: the locator matched the same pattern
            raise RuntimeError(f"unexpected bell name: {self.button.get_attribute('aria-label')!r}")
        return int(match.group(1))

    @step("Open the notifications")
    def open(self) -> None:
        if not self.panel.is_visible():
            self.button.click()
        self.panel.wait_for()
        self.settled_list.wait_for(state="attached")

    @step("Close the notifications")
    def close(self) -> None:
        if self.panel.is_visible():
            self.button.click()
        self.panel.wait_for(state="hidden")

    def titles(self) -> list[str]:
        """The titles listed, newest first (opens the list if needed, and waits for it to load)."""
        self.open()
        return [text.strip() for text in self.links.all_inner_texts()]

    def notification(self, title: str) -> Locator:
        """The newest listed notification with this title: its link to the batch."""
        return self.links.filter(has_text=re.compile(rf"^{re.escape(title)}$")).first

    @step("Mark all notifications read")
    def mark_all_read(self) -> None:
        self.open()
        with self.page.expect_response(
            lambda response: response.request.method == "POST" and response.url.endswith("/notifications/read-all")
        ):
            self.mark_all_read_button.click()
        self.settled_list.wait_for(state="attached")

    @step("Open the notification {title}")
    def open_notification(self, title: str, timeout: float = 15_000) -> None:
        """Click it: the bell marks it read and the browser goes to its batch."""
        self.open()
        # Waits for the navigation itself: the batch may be the page already open, so its URL proves nothing.
        with self.page.expect_navigation(url=BATCH_URL, timeout=timeout):
            self.notification(title).click()

    @step("Enable browser notifications")
    def enable_browser_notifications(self) -> None:
        self.open()
        self.enable_push_button.click()
