"""Processes and services the kit starts and stops: the bundled backend (or the given target), workers,
redis-server, moto, PostgreSQL databases, SMTP and webhook sinks, the browser, ffmpeg and promtool; the distributed
topology; what processes and the machine cost.

Names load on first use (``utilities._lazy``).
"""

from __future__ import annotations

from utilities._lazy import lazy_exports

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
    "apt_install": "apt",
    "body_text": "mailbox",
    "find_chromium": "browser",
    "find_promtool": "promtool",
    "free_port": "ports",
    "header_equals": "mailbox",
    "stop_process": "child_process",
    "video_available": "video",
    "MemorySample": "process_metrics",
    "cpu_seconds": "process_metrics",
    "machine_busy_seconds": "process_metrics",
    "machine_facts": "process_metrics",
    "process_tree": "process_metrics",
    "read_memory": "process_metrics",
    "reset_peak": "process_metrics",
    "rss_bytes": "process_metrics",
    "run_wait_ns": "process_metrics",
    "target": "target",
    "tree_rss_bytes": "process_metrics",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
