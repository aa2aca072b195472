"""Notifications against a real server: email over real SMTP, in-app, webhooks, preferences, outages."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from utilities.client.api import BatchApi
from utilities.procs.backend import BackendProcess
from utilities.procs.mailbox import Mailbox, WebhookReceiver, body_text, header_equals
from utilities.procs.ports import free_port

pytestmark = pytest.mark.area("Notifications")

FAST_RETRY = {"BATCHQA_NOTIFY_RETRY_BASE_SECONDS": "0.2", "BATCHQA_NOTIFY_RETRY_MAX_SECONDS": "1"}
SECRET = "whsec-0123456789abcdef"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as box:
        yield box


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
def mail_backend(start_backend: Callable[..., BackendProcess], mailbox: Mailbox) -> BackendProcess:
    env = {"BATCHQA_SMTP_HOST": mailbox.host, "BATCHQA_SMTP_PORT": str(mailbox.port), **FAST_RETRY}
    return start_backend(env=env)


def _deliveries(api: BatchApi, batch_id: str) -> list[dict[str, Any]]:
    response = api.http.get("/api/v1/notifications/deliveries", params={"batch_id": batch_id})
    response.raise_for_status()
    return response.json()["deliveries"]


def _wait_until_delivered(api: BatchApi, batch_id: str, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Every outbox entry of the batch settled (sent or given up) after its terminal notification exists."""
    deadline = time.monotonic() + timeout
    while True:
        entries = _deliveries(api, batch_id)
        terminal = any(e["event"] in ("completed", "completed_with_errors", "failed", "cancelled") for e in entries)
        if terminal and all(e["status"] != "pending" for e in entries):
            return entries
        assert time.monotonic() < deadline, f"deliveries still pending: {entries}"
        time.sleep(0.05)


def test_completed_batch_emails_the_summary_once_with_a_link(
    mail_backend: BackendProcess, mailbox: Mailbox, make_api: Callable[..., BatchApi]
) -> None:
    api = make_api(mail_backend.url)
    email_address = api.http.get("/api/v1/auth/me").json()["email"]
    batch = api.upload(text="Explain tides\nPlan a picnic\nWrite a haiku about rain")["batch_id"]
    api.wait_until(batch)
    mail = mailbox.wait_for(header_equals("X-BatchQA-Batch", batch))
    assert mail["To"] == email_address
    assert mail["Subject"] == "Batch completed: pasted prompts"
    text, html = body_text(mail, "plain"), body_text(mail, "html")
    assert "Succeeded: 3" in text and "Failed: 0" in text
    link = f"{mail_backend.url}/batches/{batch}"
    assert link in text and f'href="{link}"' in html
    _wait_until_delivered(api, batch)
    assert len(mailbox.matching(header_equals("X-BatchQA-Batch", batch))) == 1, "default email: outcomes only"


def test_in_app_notifications_list_each_event_once_and_mark_read(
    api: BatchApi, slow_backend: BackendProcess, make_api: Callable[..., BatchApi]
) -> None:
    slow = make_api(slow_backend.url)
    batch = slow.upload(text="\n".join(f"Describe city number {i}" for i in range(40)))["batch_id"]
    slow.wait_until(batch)
    _wait_until_delivered(slow, batch)
    listed = slow.http.get("/api/v1/notifications").json()
    events = [n["event"] for n in listed["notifications"] if n["batch_id"] == batch]
    assert sorted(events) == sorted(["started", "progress_25", "progress_50", "progress_75", "completed"])
    assert listed["unread"] == 5
    first = listed["notifications"][0]["id"]
    assert slow.http.post(f"/api/v1/notifications/{first}/read").json()["read"] is True
    assert slow.http.get("/api/v1/notifications").json()["unread"] == 4
    assert slow.http.post("/api/v1/notifications/read-all").json()["marked"] == 4
    other = make_api(slow_backend.url, prefix="other")
    assert other.http.post(f"/api/v1/notifications/{first}/read").status_code == 404


def test_email_switched_off_sends_no_mail(
    mail_backend: BackendProcess, mailbox: Mailbox, make_api: Callable[..., BatchApi]
) -> None:
    api = make_api(mail_backend.url)
    prefs = api.http.put("/api/v1/notifications/preferences", json={"channels": {"email": []}})
    assert prefs.status_code == 200, prefs.text
    assert prefs.json()["channels"]["email"] == []
    batch = api.upload(text="one prompt\ntwo prompts")["batch_id"]
    api.wait_until(batch)
    entries = _wait_until_delivered(api, batch)
    assert not [e for e in entries if e["channel"] == "email"]
    assert [e["channel"] for e in entries if e["event"] == "completed"] == ["in_app"]
    assert mailbox.matching(header_equals("X-BatchQA-Batch", batch)) == []


def test_preferences_update_only_what_is_sent(api: BatchApi) -> None:
    url = "http://127.0.0.1:9/hook"
    api.http.put(
        "/api/v1/notifications/preferences", json={"webhook_url": url, "webhook_secret": SECRET}
    ).raise_for_status()
    changed = api.http.put("/api/v1/notifications/preferences", json={"channels": {"push": []}}).json()
    assert (changed["webhook_url"], changed["webhook_secret_set"], changed["channels"]["push"]) == (url, True, [])
    cleared = api.http.put("/api/v1/notifications/preferences", json={"webhook_url": None, "webhook_secret": None})
    assert (cleared.json()["webhook_url"], cleared.json()["webhook_secret_set"]) == (None, False)
    short = api.http.put("/api/v1/notifications/preferences", json={"webhook_secret": "short"})
    assert short.status_code == 422
    assert short.json()["error"]["message"].startswith("webhook_secret: ")


def test_unknown_channel_or_event_in_preferences_is_422(api: BatchApi) -> None:
    response = api.http.put("/api/v1/notifications/preferences", json={"channels": {"pager": ["completed"]}})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["unknown_channels"] == ["pager"]


def test_webhook_is_signed_retried_and_delivered_once(
    start_backend: Callable[..., BackendProcess], receiver: WebhookReceiver, make_api: Callable[..., BatchApi]
) -> None:
    server = start_backend(env=FAST_RETRY)
    api = make_api(server.url)
    api.http.put(
        "/api/v1/notifications/preferences",
        json={"channels": {"webhook": ["completed"]}, "webhook_url": receiver.url, "webhook_secret": SECRET},
    ).raise_for_status()
    receiver.fail_next(2)
    batch = api.upload(text="hook me\nand me")["batch_id"]
    api.wait_until(batch)
    call = receiver.wait_for(lambda c: c.json()["batch_id"] == batch)
    assert call.signature_valid(SECRET)
    assert not call.signature_valid("another-secret-000000")
    assert call.json()["event"] == "completed" and call.json()["succeeded"] == 2
    assert "webhook_secret" not in call.json()
    entries = _wait_until_delivered(api, batch)
    (hook,) = [e for e in entries if e["channel"] == "webhook"]
    assert (hook["status"], hook["attempts"]) == ("sent", 3)
    assert len([c for c in receiver.calls if c.json()["batch_id"] == batch]) == 1


def test_smtp_down_during_the_batch_then_up_delivers_the_mail_once(
    start_backend: Callable[..., BackendProcess], make_api: Callable[..., BatchApi]
) -> None:
    port = free_port()
    server = start_backend(env={"BATCHQA_SMTP_HOST": "127.0.0.1", "BATCHQA_SMTP_PORT": str(port), **FAST_RETRY})
    api = make_api(server.url)
    batch = api.upload(text="survive the outage\nplease")["batch_id"]
    assert api.wait_until(batch, timeout=10)["status"] == "completed", "a dead mail server must not hold the batch"
    deadline = time.monotonic() + 10
    while not any(e["channel"] == "email" and e["attempts"] >= 2 for e in _deliveries(api, batch)):
        assert time.monotonic() < deadline, _deliveries(api, batch)
        time.sleep(0.05)
    (failing,) = [e for e in _deliveries(api, batch) if e["channel"] == "email"]
    assert failing["status"] == "pending" and "SMTP" in failing["last_error"]
    with Mailbox(port=port) as box:
        box.wait_for(header_equals("X-BatchQA-Batch", batch))
        entries = _wait_until_delivered(api, batch)
        assert [e["status"] for e in entries if e["channel"] == "email"] == ["sent"]
        assert len(box.matching(header_equals("X-BatchQA-Batch", batch))) == 1
