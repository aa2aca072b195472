"""The channel × event matrix, its documented defaults, and reading a user's effective preferences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from .models import NotificationPrefs

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
CHANNELS = ("in_app", "email", "push", "webhook")
OUTCOMES = ("completed", "completed_with_errors", "failed", "cancelled")

# In-app gets everything (it is quiet: a bell). Email and push only when a batch ends, so nobody is
# mailed four times per batch. Webhooks get everything once a URL is set: integrations filter themselves.
DEFAULT_MATRIX: dict[str, list[str]] = {
    "in_app": list(EVENTS),
    "email": list(OUTCOMES),
    "push": list(OUTCOMES),
    "webhook": list(EVENTS),
}


@dataclass(frozen=True)
class Preferences:
    matrix: dict[str, list[str]]
    webhook_url: str | None
    webhook_secret: str | None

    def wants(self, channel: str, event: str) -> bool:
        if channel == "webhook" and not self.webhook_url:
            return False
        return event in self.matrix.get(channel, ())

    def view(self) -> dict[str, Any]:
        return {
            "channels": {channel: list(self.matrix.get(channel, [])) for channel in CHANNELS},
            "webhook_url": self.webhook_url,
            "webhook_secret_set": bool(self.webhook_secret),
            "events": list(EVENTS),
            "defaults": DEFAULT_MATRIX,
        }


def load_preferences(session: Session, user_id: int) -> Preferences:
    row = session.get(NotificationPrefs, user_id)
    if row is None:
        return Preferences({k: list(v) for k, v in DEFAULT_MATRIX.items()}, None, None)
    return Preferences(dict(row.matrix), row.webhook_url, row.webhook_secret)
