"""The ``slow_requests`` fault of the fault switch: API requests wait before they are handled."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from . import faults


class SlowRequests:
    """ASGI middleware for ``slow_requests``: each HTTP request under ``/api/`` waits before it is handled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        delay_ms = faults.value("slow_requests")
        if delay_ms and scope["type"] == "http" and scope["path"].startswith("/api/"):
            await asyncio.sleep(delay_ms / 1000)
        await self.app(scope, receive, send)
