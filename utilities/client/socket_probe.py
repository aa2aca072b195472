"""One-off socket attempts for refusal and limit checks: connect, send, read until closed; the close code."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from utilities.client.progress_messages import ws_url


@dataclass(frozen=True)
class SocketOutcome:
    """How a one-off socket attempt went: the messages read, and the close code (None: still open)."""

    messages: list[dict[str, Any]]
    close_code: int | None
    close_reason: str = ""
    http_status: int | None = None

    @property
    def first(self) -> dict[str, Any] | None:
        return self.messages[0] if self.messages else None


def probe_socket(
    base_url: str,
    batch_id: str,
    *,
    headers: Mapping[str, str] | None = None,
    origin: str | None = None,
    query_token: str | None = None,
    send: Sequence[str | bytes] = (),
    until_messages: int | None = None,
    timeout: float = 10.0,
) -> SocketOutcome:
    """Connect, send ``send``, then read until the server closes (or ``until_messages`` arrived, or ``timeout``).

    For refusal and limit checks: a refused socket is accepted and closed with its code at once.
    """
    url = ws_url(base_url, batch_id, token=query_token)
    messages: list[dict[str, Any]] = []
    try:
        ws = connect(url, origin=origin, additional_headers=dict(headers or {}), open_timeout=timeout)  # type: ignore[arg-type]
    except InvalidStatus as exc:
        return SocketOutcome([], None, http_status=exc.response.status_code)
    with ws:
        try:
            for payload in send:
                ws.send(payload)
            deadline = time.monotonic() + timeout
            while (remaining := deadline - time.monotonic()) > 0:
                messages.append(json.loads(ws.recv(timeout=remaining)))
                if until_messages is not None and len(messages) >= until_messages:
                    break
        except ConnectionClosed as exc:
            if exc.rcvd is None:
                return SocketOutcome(messages, 1006)
            return SocketOutcome(messages, exc.rcvd.code, exc.rcvd.reason)
        except TimeoutError:
            pass
    return SocketOutcome(messages, None)
