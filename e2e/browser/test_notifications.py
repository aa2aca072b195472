"""Notifications through the browser: the bell, email, push and webhooks, and the preferences that steer them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from page_objects import (
    BatchListPage,
    BatchUploadPage,
    NotificationBell,
    NotificationPreferencesPage,
    ProgressTracker,
    ResultsDownloader,
)
from page_objects.notification_preferences_page import EVENTS
from utilities.procs.mailbox import Mailbox, WebhookReceiver, body_text, header_equals
from utilities.pytest_plugin import Target, User

from .support import FIXTURE_FILES, BrowserPush, wait_until_settled

pytestmark = [pytest.mark.e2e, pytest.mark.feature("Notifications")]

VALID_10 = FIXTURE_FILES / "valid-10.csv"
COMPLETED_10 = "Batch completed: valid-10.csv"
PASTED = "Explain how tides work\nPlan a picnic for six people\nWrite a haiku about rain"
COMPLETED_PASTED = "Batch completed: pasted prompts"
SECRET = "e2e-webhook-secret-0123456789"
NOTIFICATION_SOCKET = re.compile(r"/api/v1/notifications/ws")


@pytest.fixture(autouse=True)
def _notifications_capability(target: Target) -> None:
    target.require("notifications")


def notifications(user: User) -> dict[str, Any]:
    response = user.api.http.get("/api/v1/notifications")
    response.raise_for_status()
    return response.json()


def upload_pasted(page: Page) -> str:
    upload = BatchUploadPage(page)
    upload.open()
    upload.upload_via_paste(PASTED)
    batch_id = upload.wait_until_started()
    assert ProgressTracker(page).wait_until_status("completed") == "completed"
    return batch_id


@pytest.mark.story("Completion notification: in-app, email, push")
@pytest.mark.severity("critical")
def test_completed_batch_reaches_the_bell_the_mailbox_and_a_background_tab(
    signed_in_page: Page, user: User, mailbox: Mailbox, base_url: str, tmp_path: Path
) -> None:
    # Given a signed-in user who allowed browser notifications, with a second batchqa tab in the background
    context = signed_in_page.context
    push = BrowserPush(context, base_url)
    background = signed_in_page
    BatchListPage(background).open()
    NotificationBell(background).wait_until_live()
    page = context.new_page()
    page.bring_to_front()
    push.send_to_background(background)
    upload = BatchUploadPage(page)
    upload.open()
    bell = NotificationBell(page)
    assert bell.unread_count() == 0

    # When they upload 10 prompts
    upload.upload_via_file_picker(VALID_10)
    batch_id = upload.wait_until_started()

    # Then the page shows completion
    tracker = ProgressTracker(page)
    assert tracker.wait_until_status("completed") == "completed"
    expect(tracker.notification).to_have_text("Batch completed: all 10 prompts enhanced.")

    # And the bell, live, counts and lists the completion, as the server has it once every delivery is done
    bell.open()
    expect(bell.notification(COMPLETED_10)).to_be_visible()
    wait_until_settled(user.api, batch_id)
    listed = notifications(user)
    completed = next(n for n in listed["notifications"] if n["title"] == COMPLETED_10)
    expect(bell.button).to_have_accessible_name(f"Notifications, {listed['unread']} unread")
    assert bell.titles() == [n["title"] for n in listed["notifications"]]

    # And the background tab raised one browser notification (push: outcomes only), the tab in front none
    assert push.wait_for(background) == [
        {"title": COMPLETED_10, "body": completed["body"], "tag": f"batch-{batch_id}", "hidden": True}
    ]
    assert push.shown(page) == []

    # And clicking it, from another page, opens the batch and marks it read
    BatchListPage(page).open()
    bell.open_notification(COMPLETED_10)
    assert tracker.batch_id == batch_id
    assert tracker.wait_until_status("completed") == "completed"
    expect(bell.button).to_have_accessible_name(f"Notifications, {listed['unread'] - 1} unread")
    bell.mark_all_read()
    expect(bell.button).to_have_accessible_name("Notifications, 0 unread")
    assert notifications(user)["unread"] == 0

    # And exactly one email arrived: the summary with its counts in the text part, an HTML part, and a link
    mail = mailbox.wait_for(header_equals("X-BatchQA-Batch", batch_id))
    assert mail["Subject"] == COMPLETED_10
    assert mail["X-BatchQA-Event"] == "completed"
    text, html = body_text(mail, "plain"), body_text(mail, "html")
    for line in ("Total: 10", "Succeeded: 10", "Failed: 0", "Cancelled: 0"):
        assert line in text, text
    assert "<html" in html and COMPLETED_10 in html
    found = re.search(r"^Results: (\S+)", text, re.MULTILINE)
    assert found, text
    link = found.group(1)
    assert link == f"{base_url}/batches/{batch_id}"
    assert f'href="{link}"' in html
    assert len(mailbox.matching(header_equals("X-BatchQA-Batch", batch_id))) == 1

    # And the link, opened in the same browser, shows that batch's results
    results = context.new_page()
    results.goto(link)
    assert ProgressTracker(results).wait_until_status("completed") == "completed"
    expect(results.get_by_role("heading", level=1)).to_have_text("valid-10.csv")
    assert len(ResultsDownloader(results, tmp_path).preview_rows()) == 10

    # And clicking the browser notification focuses the background tab and opens the batch there
    push.click(background)
    background.wait_for_url(re.compile(rf"/batches/{batch_id}$"))
    assert ProgressTracker(background).wait_until_status("completed") == "completed"
    assert push.focus_calls(background) == 1
    assert background.evaluate("document.visibilityState") == "visible"


@pytest.mark.story("User notification preferences")
def test_channels_switched_off_on_the_preferences_page_send_nothing(
    signed_in_page: Page,
    user: User,
    mailbox: Mailbox,
    preferences_page: NotificationPreferencesPage,
    bell: NotificationBell,
    base_url: str,
) -> None:
    # Given a user who switched email off for "completed" and the bell off for every event, push left on
    push = BrowserPush(signed_in_page.context, base_url)
    preferences_page.open()
    preferences_page.set("email", "completed", False)
    preferences_page.set_channel("in_app", False)
    preferences_page.save()
    expect(preferences_page.saved).to_have_text(re.compile(r"^Preferences saved at "))
    expect(preferences_page.error).to_be_hidden()
    preferences_page.open()
    assert not preferences_page.is_checked("email", "completed")
    assert not any(preferences_page.is_checked("in_app", event) for event in EVENTS)
    assert preferences_page.is_checked("email", "failed") and preferences_page.is_checked("push", "completed")

    # When a batch runs (started through the API) while a batchqa tab, listening, is in the background.
    # The tab stays on one page: a notification delivered while a page is between sockets reaches no tab.
    BatchListPage(signed_in_page).open()
    bell.wait_until_live()
    push.send_to_background(signed_in_page)
    batch_id = user.api.upload(text=PASTED)["batch_id"]

    # Then the live page heard of the completion (push is still on) ...
    assert [shown["title"] for shown in push.wait_for(signed_in_page)] == [COMPLETED_PASTED]
    entries = wait_until_settled(user.api, batch_id)
    # ... but nothing was queued for email, no mail arrived, and the bell stays empty, live and after a reload
    assert not [e for e in entries if e["channel"] == "email"], entries
    assert all(e["status"] == "sent" for e in entries), entries
    assert mailbox.matching(header_equals("X-BatchQA-Batch", batch_id)) == []
    expect(bell.button).to_have_accessible_name("Notifications, 0 unread")
    assert bell.titles() == []
    signed_in_page.reload()
    expect(bell.button).to_have_accessible_name("Notifications, 0 unread")
    assert bell.titles() == []
    assert notifications(user) == {"notifications": [], "unread": 0}


@pytest.mark.story("Webhooks")
def test_webhook_set_on_the_preferences_page_arrives_once_and_signed(
    signed_in_page: Page,
    user: User,
    webhook_receiver: WebhookReceiver,
    preferences_page: NotificationPreferencesPage,
    base_url: str,
) -> None:
    # Given a webhook for "completed" only, set on the preferences page
    preferences_page.open()
    preferences_page.set_webhook(webhook_receiver.url, SECRET)
    for event in EVENTS:
        preferences_page.set("webhook", event, event == "completed")
    preferences_page.save()
    expect(preferences_page.saved).to_have_text(re.compile(r"^Preferences saved at "))
    expect(preferences_page.webhook_url).to_have_value(webhook_receiver.url)
    expect(preferences_page.secret_state).to_be_visible()

    # When a batch completes
    batch_id = upload_pasted(signed_in_page)

    # Then the receiver got exactly one call for it, signed with the secret, describing the outcome
    call = webhook_receiver.wait_for(lambda c: c.json().get("batch_id") == batch_id)
    entries = wait_until_settled(user.api, batch_id)
    assert [e["status"] for e in entries if e["channel"] == "webhook"] == ["sent"], entries
    assert [c for c in webhook_receiver.calls if c.json().get("batch_id") == batch_id] == [call]
    assert call.signature_valid(SECRET)
    assert not call.signature_valid(SECRET[::-1])
    payload = call.json()
    assert (payload["event"], payload["status"], payload["total"], payload["succeeded"]) == (
        "completed",
        "completed",
        3,
        3,
    )
    assert call.headers["x-batchqa-event"] == "completed"
    assert payload["link"] == f"{base_url}/batches/{batch_id}"
    assert "webhook_secret" not in payload and "email" not in payload


@pytest.mark.story("User notification preferences")
@pytest.mark.severity("minor")
def test_preferences_page_shows_the_servers_refusal_as_worded(
    user: User, preferences_page: NotificationPreferencesPage
) -> None:
    refused = user.api.http.put(
        "/api/v1/notifications/preferences",
        json={"channels": {}, "webhook_url": "https://hooks.example.test/batchqa", "webhook_secret": "too-short"},
    )
    assert refused.status_code == 422
    preferences_page.open()
    preferences_page.set_webhook("https://hooks.example.test/batchqa", "too-short")

    preferences_page.save()

    expect(preferences_page.error).to_have_text(refused.json()["error"]["message"])
    expect(preferences_page.saved).to_have_text("")


@pytest.mark.story("In-app bell: fallback")
def test_bell_falls_back_to_polling_when_the_socket_is_refused(
    signed_in_page: Page, user: User, bell: NotificationBell
) -> None:
    # Given a page whose notifications socket the network refuses
    opened: list[str] = []

    def refuse(socket: WebSocketRoute) -> None:
        opened.append(socket.url)
        socket.close(code=1011, reason="e2e: no sockets here")

    signed_in_page.route_web_socket(NOTIFICATION_SOCKET, refuse)
    BatchListPage(signed_in_page).open()
    assert bell.unread_count() == 0

    # When a batch completes (started elsewhere, through the API)
    batch_id = user.api.upload(text=PASTED)["batch_id"]
    user.api.wait_until(batch_id)

    # Then the bell still learns of it, by polling, within one 5 s poll (plus the time to deliver it)
    expect(bell.button).not_to_have_accessible_name("Notifications, 0 unread", timeout=12_000)
    assert COMPLETED_PASTED in bell.titles()
    assert opened, "the page never tried the socket"
    assert bell.button.get_attribute("data-mode") == "polling"


def test_enable_browser_notifications_asks_the_browser_and_says_what_it_answered(
    signed_in_page: Page, bell: NotificationBell, base_url: str
) -> None:
    # Not yet asked: the bell offers to ask. Headless Chromium answers a permission request with "denied".
    BatchListPage(signed_in_page).open()
    bell.open()
    expect(bell.push_state).to_be_hidden()
    expect(bell.enable_push_button).to_be_visible()

    bell.enable_browser_notifications()

    expect(bell.push_state).to_have_text(re.compile(r"^Browser notifications are blocked for this site"))
    expect(bell.enable_push_button).to_be_hidden()
    # Once granted (as a user would in the browser's site settings), the bell says they are on
    signed_in_page.context.grant_permissions(["notifications"], origin=base_url)
    signed_in_page.reload()
    bell.open()
    expect(bell.push_state).to_have_text(re.compile(r"^Browser notifications are on"))
    expect(bell.enable_push_button).to_be_hidden()
