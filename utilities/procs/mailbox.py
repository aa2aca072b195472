"""A real SMTP sink (aiosmtpd) and a webhook receiver, each a library a test or a person can run.

``Mailbox`` listens on loopback, keeps every message parsed, and ``wait_for`` blocks until one
matches. ``WebhookReceiver`` does the same for HTTP POSTs and can check their HMAC signature.
``python -m utilities.procs.mailbox --port 2525`` prints whatever arrives.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from utilities.procs.ports import free_port


class _Collector:
    """An aiosmtpd handler that parses and keeps each message."""

    def __init__(self, on_message: Callable[[EmailMessage], None]) -> None:
        self._on_message = on_message

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self._on_message(parsed)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class Mailbox:
    """An SMTP server on ``host:port`` (a free port by default) that keeps what it receives."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.messages: list[EmailMessage] = []
        self._changed = threading.Condition()
        self._controller = Controller(_Collector(self._keep), hostname=host, port=self.port)

    def _keep(self, message: EmailMessage) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def start(self) -> Mailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Mailbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def matching(self, predicate: Callable[[EmailMessage], bool]) -> list[EmailMessage]:
        with self._changed:
            return [m for m in self.messages if predicate(m)]

    def wait_for(self, predicate: Callable[[EmailMessage], bool], timeout: float = 30.0) -> EmailMessage:
        """The first message matching ``predicate``; ``TimeoutError`` listing what did arrive."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    subjects = [m["Subject"] for m in self.messages]
                    raise TimeoutError(f"no matching mail within {timeout:.0f} s; received: {subjects}")
                self._changed.wait(remaining)


def subject_contains(text: str) -> Callable[[EmailMessage], bool]:
    return lambda message: text in (message["Subject"] or "")


def header_equals(name: str, value: str) -> Callable[[EmailMessage], bool]:
    return lambda message: message[name] == value


def body_text(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else ""


@dataclass(frozen=True)
class WebhookCall:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def signature_valid(self, secret: str, header: str = "X-BatchQA-Signature") -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get(header.lower(), ""))


class WebhookReceiver:
    """An HTTP server that records every POST; ``fail_next(n)`` answers 503 to the next n calls."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.calls: list[WebhookCall] = []
        self._changed = threading.Condition()
        self._failures_left = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._changed:
                    if receiver._failures_left > 0:
                        receiver._failures_left -= 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    receiver.calls.append(WebhookCall(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    receiver._changed.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port or 0), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def fail_next(self, count: int) -> None:
        with self._changed:
            self._failures_left = count

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[WebhookCall], bool], timeout: float = 30.0) -> WebhookCall:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for call in self.calls:
                    if predicate(call):
                        return call
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    events = [c.headers.get("x-batchqa-event") for c in self.calls]
                    raise TimeoutError(f"no matching webhook within {timeout:.0f} s; received events: {events}")
                self._changed.wait(remaining)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Print every mail an SMTP client sends to this sink.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    args = parser.parse_args()
    with Mailbox(args.host, args.port) as box:
        print(f"SMTP sink on {box.host}:{box.port}; Ctrl-C to stop", flush=True)
        seen = 0
        try:
            while True:
                box.wait_for(lambda _m, known=seen: len(box.messages) > known, timeout=3600)
                for message in box.messages[seen:]:
                    print(f"--- {message['Subject']} -> {message['To']}\n{body_text(message)}", flush=True)
                seen = len(box.messages)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
