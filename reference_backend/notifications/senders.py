"""Channel senders: SMTP (or .eml files when no host is set), signed webhooks, the user's socket."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
from email.message import EmailMessage
from html import escape
from pathlib import Path
from typing import Any, Protocol

import httpx

from ..bus import EventPublisher
from ..config import Settings

SIGNATURE_HEADER = "X-BatchQA-Signature"


class DeliveryError(Exception):
    """The channel refused or could not be reached; the outbox retries with backoff."""


class Sender(Protocol):
    def send(self, entry_id: int, payload: dict[str, Any]) -> None: ...


def build_email(entry_id: int, payload: dict[str, Any], sender: str, base_url: str) -> EmailMessage:
    """Multipart text + HTML with the summary, the counts and a link to the results."""
    link = base_url.rstrip("/") + payload["path"]
    message = EmailMessage()
    message["Subject"] = payload["title"]
    message["From"] = sender
    message["To"] = payload["email"]
    # A stable id per outbox entry: a receiver can drop the copy a crash between send and commit makes.
    message["Message-ID"] = f"<outbox-{entry_id}.{payload['batch_id']}@batchqa.local>"
    message["X-BatchQA-Batch"] = payload["batch_id"]
    message["X-BatchQA-Event"] = payload["event"]
    counts = (
        f"Total: {payload['total']}\nSucceeded: {payload['succeeded']}\n"
        f"Failed: {payload['failed']}\nCancelled: {payload['cancelled']}\n"
    )
    message.set_content(f"{payload['body']}\n\n{counts}\nResults: {link}\n")
    rows = "".join(
        f"<tr><th scope='row'>{label}</th><td>{payload[key]}</td></tr>"
        for label, key in (
            ("Total", "total"),
            ("Succeeded", "succeeded"),
            ("Failed", "failed"),
            ("Cancelled", "cancelled"),
        )
    )
    message.add_alternative(
        f"<html><body><h1>{escape(payload['title'])}</h1><p>{escape(payload['body'])}</p>"
        f'<table>{rows}</table><p><a href="{escape(link)}">Open the results</a></p></body></html>',
        subtype="html",
    )
    return message


class SmtpSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, entry_id: int, payload: dict[str, Any]) -> None:
        s = self.settings
        message = build_email(entry_id, payload, s.smtp_from, s.base_url)
        try:
            if s.smtp_tls == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.smtp_host or "",
                    s.smtp_port,
                    timeout=s.smtp_timeout_seconds,
                    context=ssl.create_default_context(),
                )
            else:
                client = smtplib.SMTP(s.smtp_host or "", s.smtp_port, timeout=s.smtp_timeout_seconds)
            with client:
                if s.smtp_tls == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if s.smtp_user:
                    client.login(s.smtp_user, s.smtp_password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {s.smtp_host}:{s.smtp_port}: {exc}") from exc


class FileMailSender:
    """No SMTP host configured: each mail becomes an .eml file, so nothing is lost and it can be read."""

    def __init__(self, directory: Path, sender: str, base_url: str) -> None:
        self.directory = directory
        self.sender = sender
        self.base_url = base_url

    def send(self, entry_id: int, payload: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{entry_id:08d}-{payload['event']}.eml"
        path.write_bytes(bytes(build_email(entry_id, payload, self.sender, self.base_url)))


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """POST the event as JSON, signed with the user's secret (HMAC-SHA256 of the exact body)."""

    def __init__(self, timeout: float, base_url: str) -> None:
        self.timeout = timeout
        self.base_url = base_url

    def send(self, entry_id: int, payload: dict[str, Any]) -> None:
        public = {k: v for k, v in payload.items() if k not in ("webhook_url", "webhook_secret", "email", "path")}
        public["link"] = self.base_url.rstrip("/") + payload["path"]
        body = json.dumps(public, ensure_ascii=False, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "X-BatchQA-Event": payload["event"],
            "X-BatchQA-Delivery": str(entry_id),
        }
        if payload.get("webhook_secret"):
            headers[SIGNATURE_HEADER] = sign(payload["webhook_secret"], body)
        try:
            response = httpx.post(payload["webhook_url"], content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {payload['webhook_url']}: {exc}") from exc
        if response.status_code >= 300:
            raise DeliveryError(f"webhook {payload['webhook_url']} answered {response.status_code}")


class SocketSender:
    """In-app: push the notification to whichever of this user's sockets are open (bell and browser push)."""

    def __init__(self, publisher: EventPublisher) -> None:
        self.publisher = publisher

    def send(self, entry_id: int, payload: dict[str, Any]) -> None:
        message = {
            "type": "notification",
            "id": payload["notification_id"],
            "event": payload["event"],
            "batch_id": payload["batch_id"],
            "title": payload["title"],
            "body": payload["body"],
            "link": payload["path"],
            "push": payload["push"],
            "in_app": payload.get("in_app", True),
        }
        self.publisher.publish(f"user:{payload['user_id']}", message)
