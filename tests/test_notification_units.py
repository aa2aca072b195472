"""Units of the notification machinery: which events fire, backoff, and the email's shape."""

from __future__ import annotations

import pytest

from reference_backend.models import Batch
from reference_backend.notifications.dispatcher import backoff_seconds
from reference_backend.notifications.preferences import DEFAULT_MATRIX, Preferences
from reference_backend.notifications.senders import build_email, sign
from reference_backend.notifications.triggers import fired_events

pytestmark = pytest.mark.area("Notifications")


def _batch(status: str, processed: int, total: int = 100, milestone: int = 0) -> Batch:
    return Batch(status=status, succeeded=processed, failed=0, cancelled=0, total=total, milestone=milestone)


@pytest.mark.parametrize(
    ("status", "kind", "processed", "expected"),
    [
        ("running", "status", 0, ["started"]),
        ("running", "progress", 24, []),
        ("running", "progress", 25, ["progress_25"]),
        ("running", "progress", 80, ["progress_75"]),
        ("running", "progress", 100, []),  # the last rows: the batch's outcome follows in the same transaction
        ("completed", "completed", 100, ["completed"]),
        ("cancelled", "status", 40, ["cancelled"]),
        ("paused", "status", 40, []),
    ],
)
def test_fired_events(status: str, kind: str, processed: int, expected: list[str]) -> None:
    assert fired_events(_batch(status, processed), kind) == expected


@pytest.mark.parametrize(
    ("announced", "processed", "expected"), [(25, 30, []), (25, 50, ["progress_50"]), (75, 90, [])]
)
def test_a_progress_milestone_fires_only_above_the_one_announced(
    announced: int, processed: int, expected: list[str]
) -> None:
    assert fired_events(_batch("running", processed, milestone=announced), "progress") == expected


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_seconds(n, base=0.5, cap=3) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3, 3]


def test_webhook_needs_a_url_even_when_the_matrix_says_yes() -> None:
    prefs = Preferences(dict(DEFAULT_MATRIX), webhook_url=None, webhook_secret=None)
    assert not prefs.wants("webhook", "completed")
    assert prefs.wants("email", "completed") and not prefs.wants("email", "progress_50")


def test_email_is_multipart_text_and_html_with_a_stable_message_id() -> None:
    payload = {
        "title": "Batch completed: a.csv",
        "body": "a.csv: done.",
        "email": "u@x.test",
        "batch_id": "b1",
        "event": "completed",
        "total": 3,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
        "path": "/batches/b1",
    }
    first, again = build_email(7, payload, "from@x.test", "http://h"), build_email(7, payload, "f@x.test", "http://h")
    assert first.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in first.iter_parts()] == ["text/plain", "text/html"]
    assert first["Message-ID"] == again["Message-ID"] == "<outbox-7.b1@batchqa.local>"
    assert 'href="http://h/batches/b1"' in first.get_body(("html",)).get_content()


def test_signature_is_hmac_sha256_of_the_body() -> None:
    # Reference value from Python's hmac module, so a receiver in any language can check it.
    assert sign("k", b"{}") == "sha256=add853b103fbcc936a194f9eb15e29c4ff08af6e47d5d1bca4f20218e31e4fff"
