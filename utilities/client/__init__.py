"""Talking to a target through the contract: API client, JSON Schemas, the socket follower, socket and polling
recorders, cadence.

Names load on first use (``utilities._lazy``).
"""

from __future__ import annotations

from utilities._lazy import lazy_exports

_EXPORTS = {
    "ADVANCING_TYPES": "progress_messages",
    "ApiFailure": "api",
    "BatchApi": "api",
    "CadenceReport": "cadence_report",
    "Connection": "progress_messages",
    "Credentials": "api",
    "HUNDRED_PROMPTS_BUDGET_S": "spec_numbers",
    "UPDATE_EVERY_S": "spec_numbers",
    "PageCadence": "cadence",
    "SeqCoverage": "seq_coverage",
    "SeqFindings": "seq_coverage",
    "SocketEvent": "socket_follower",
    "SocketFollower": "socket_follower",
    "SocketOutcome": "socket_probe",
    "Reconnect": "socket_follower",
    "Ending": "socket_follower",
    "Why": "socket_follower",
    "PollingRecorder": "recorders",
    "ProfileError": "profile",
    "Received": "progress_messages",
    "TERMINAL_STATUSES": "api",
    "TargetProfile": "profile",
    "WebSocketRecorder": "recorders",
    "assert_matches_schema": "schemas",
    "load_profile": "profile",
    "page_cadence": "cadence",
    "message_problems": "progress_messages",
    "parse_time": "progress_messages",
    "percentile": "cadence",
    "probe_socket": "socket_probe",
    "schema_problems": "schemas",
    "seq_ranges": "progress_messages",
    "watch_command": "watch",
    "ws_url": "progress_messages",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
