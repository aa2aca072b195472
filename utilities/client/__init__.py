"""Talking to a target through the contract: API client, JSON Schemas, socket and polling recorders, cadence.

Names load on first use (PEP 562), so importing one piece does not pull in the dependencies of
the others (aiosmtpd, matplotlib, Locust's gevent).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ADVANCING_TYPES": "recorders",
    "ApiFailure": "api",
    "BatchApi": "api",
    "CadenceReport": "recorders",
    "Connection": "recorders",
    "Credentials": "api",
    "PollingRecorder": "recorders",
    "ProfileError": "profile",
    "Received": "recorders",
    "TERMINAL_STATUSES": "api",
    "TargetProfile": "profile",
    "WebSocketRecorder": "recorders",
    "assert_matches_schema": "schemas",
    "load_profile": "profile",
    "message_problems": "recorders",
    "parse_time": "recorders",
    "percentile": "recorders",
    "probe_socket": "recorders",
    "schema_problems": "schemas",
    "seq_ranges": "recorders",
    "watch_command": "watch",
    "ws_url": "recorders",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
