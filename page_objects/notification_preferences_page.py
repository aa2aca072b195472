"""Notification settings: a checkbox per channel and event, the webhook URL and secret, Save."""

from __future__ import annotations

from playwright.sync_api import Locator, Page

from .steps import step

CHANNELS = ("in_app", "email", "push", "webhook")
EVENTS = (
    "started",
    "progress_25",
    "progress_50",
    "progress_75",
    "completed",
    "completed_with_errors",
    "failed",
    "cancelled",
)
# How the page names them in each checkbox's label ("email: completed"); the arguments are the API's names.
_CHANNEL_NAMES = {"in_app": "in-app"}
_EVENT_NAMES = {"progress_25": "25% done", "progress_50": "50% done", "progress_75": "75% done"}


def checkbox_label(channel: str, event: str) -> str:
    channel_name = _CHANNEL_NAMES.get(channel, channel)
    event_name = _EVENT_NAMES.get(event, event.replace("_", " "))
    return f"{channel_name}: {event_name}"


class NotificationPreferencesPage:
    """``/settings/notifications``: which events notify on which channel, and where webhooks go."""

    PATH = "/settings/notifications"

    def __init__(self, page: Page) -> None:
        self.page = page
        self.heading = page.get_by_role("heading", name="Notification settings")
        self.matrix = page.get_by_role("table", name="Which events notify you on which channel")
        self.webhook_url = page.get_by_label("Webhook URL", exact=True)
        self.webhook_secret = page.get_by_label("Webhook secret", exact=True)
        self.secret_state = page.get_by_text("A secret is set; leave the field empty to keep it.")
        self.save_button = page.get_by_role("button", name="Save", exact=True)
        self.saved = page.get_by_role("status")
        self.error = page.get_by_role("alert")

    def checkbox(self, channel: str, event: str) -> Locator:
        return self.matrix.get_by_role("checkbox", name=checkbox_label(channel, event), exact=True)

    @step("Open the notification settings")
    def open(self) -> None:
        self.page.goto(self.PATH)
        self.checkbox(CHANNELS[0], EVENTS[0]).wait_for()

    @step("Set {channel}: {event} to {on}")
    def set(self, channel: str, event: str, on: bool) -> None:
        self.checkbox(channel, event).set_checked(on)

    @step("Set every event on {channel} to {on}")
    def set_channel(self, channel: str, on: bool) -> None:
        for event in EVENTS:
            self.set(channel, event, on)

    @step("Send webhooks to {url}")
    def set_webhook(self, url: str, secret: str) -> None:
        self.webhook_url.fill(url)
        self.webhook_secret.fill(secret)

    def is_checked(self, channel: str, event: str) -> bool:
        return self.checkbox(channel, event).is_checked()

    @step("Save the notification settings")
    def save(self) -> None:
        """Press Save and wait for the server's answer (the page then confirms or shows the refusal)."""
        with self.page.expect_response(
            lambda response: response.request.method == "PUT" and response.url.endswith("/notifications/preferences")
        ):
            self.save_button.click()
