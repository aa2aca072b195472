"""Processes and services the kit starts and stops: the bundled backend, workers, redis-server, moto,
PostgreSQL databases, SMTP and webhook sinks, the browser, ffmpeg and promtool; the distributed topology.

Names load on first use (PEP 562), so importing one piece does not pull in the dependencies of
the others (aiosmtpd, matplotlib, Locust's gevent).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "API": "topology",
    "BackendProcess": "backend",
    "ChildProcess": "child_process",
    "E2E_BACKEND_ENV": "backend",
    "Chromium": "browser",
    "Cluster": "services",
    "Mailbox": "mailbox",
    "MotoServer": "services",
    "NO_VIDEO": "video",
    "PostgresDatabase": "services",
    "RedisServer": "services",
    "SYSTEM_ARGS": "browser",
    "ServiceUnavailable": "services",
    "WORKER": "topology",
    "WebhookReceiver": "mailbox",
    "body_text": "mailbox",
    "find_chromium": "browser",
    "find_promtool": "promtool",
    "free_port": "ports",
    "header_equals": "mailbox",
    "stop_process": "child_process",
    "video_available": "video",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
