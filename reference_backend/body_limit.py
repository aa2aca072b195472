"""Refuse an oversized upload while it streams in, without reading the rest of it."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import PayloadTooLarge


class UploadTooLarge(PayloadTooLarge):
    """Raised from ``receive`` once the body passes the limit; the error handler answers 413."""


class BodySizeLimit:
    """ASGI middleware for the upload path: 413 on a declared or streamed body over ``limit`` bytes."""

    def __init__(self, app: ASGIApp, *, path: str, limit: int, file_limit: int) -> None:
        self.app = app
        self.path = path
        self.limit = limit
        self.file_limit = file_limit

    def _error(self, received: int | None = None) -> UploadTooLarge:
        details = {"limit": self.file_limit} | ({"received": received} if received is not None else {})
        return UploadTooLarge(f"The upload is larger than the {self.file_limit:,}-byte limit.", **details)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reply(send, self._error())
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise self._error(received)
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    async def _reply(send: Send, error: PayloadTooLarge) -> None:
        body = json.dumps(error.body()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
