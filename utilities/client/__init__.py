"""Talking to a target through the contract: API client, JSON Schemas, socket and polling recorders, cadence.

Names load on first use (``utilities._lazy``).
"""

from __future__ import annotations

from utilities._lazy import lazy_exports

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

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
