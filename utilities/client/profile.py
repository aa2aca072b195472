"""What a target can do, declared once: the optional capabilities and the limits the black-box suites rely on.

A profile is a small JSON or TOML file passed to the suites with ``--target-profile FILE``::

    {
      "name": "staging",
      "capabilities": {"pause": true, "retry": true, "failing_prompts": true, "notifications": false},
      "limits": {"max_prompts": 500},
      "failing_prompt": "!!! ???",
      "server_log": "/var/log/batchqa/server.log"
    }

Capabilities left out are assumed present (the contract promises them), so a profile only names what a
target lacks or what it must be told. A test skips, naming the capability, only when the profile says it
is absent. Limits left out are the contract's defaults; ``max_prompt_chars`` (a provider's prompt limit,
over which a row fails) has none: left out, the target takes any prompt the file size allows.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# Each optional capability and what a target without it cannot be tested for.
CAPABILITIES: dict[str, str] = {
    "pause": "pausing and resuming a batch (POST /batch/{id}/pause|resume)",
    "retry": "retrying a batch's failed rows (POST /batch/{id}/retry)",
    "failing_prompts": "failing a row on demand: a prompt (failing_prompt) that the target fails with a reason",
    "slow_batches": "batches that run for several seconds (provider latency), so a test can act while they run",
    "attempts": "an `attempts` count per row in the JSON download",
    "progress_socket": "the progress WebSocket (/api/v1/batch/ws/{id})",
    "notifications": "notifications (in-app, email, push, webhooks)",
    "registration_closed": "a deployment with registration closed (registration_closed_url)",
    "expired_token": "a bearer token the target has issued and that has expired (expired_token)",
    "server_log": "the server's log file (server_log), to check that tokens are never written to it",
    "openapi": "an OpenAPI document at /openapi.json",
    "login_throttling": "login throttling (429 with Retry-After after repeated wrong passwords)",
    "security_headers": "the secure response headers (CSP, nosniff, frame-ancestors, Referrer-Policy)",
    "token_revocation": "server-side revocation of a bearer token at logout",
}

# docs/contract.md: BATCHQA_MAX_PROMPTS, BATCHQA_MAX_UPLOAD_BYTES defaults.
DEFAULT_LIMITS: dict[str, int] = {
    "max_prompts": 1000,
    "max_upload_bytes": 10 * 1024 * 1024,
}
# Limits a target may declare that have no default (BATCHQA_MAX_PROMPT_CHARS is unset unless set).
OPTIONAL_LIMITS = ("max_prompt_chars",)
DEFAULT_FAILING_PROMPT = "!!! ???"


class ProfileError(ValueError):
    """A profile file that cannot be used: unreadable, or naming a capability or limit the kit does not know."""


@dataclass
class TargetProfile:
    """A target's declared capabilities and limits; ``has(name)`` is True unless the profile says otherwise."""

    name: str = "target"
    capabilities: dict[str, bool] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    failing_prompt: str = DEFAULT_FAILING_PROMPT
    registration_closed_url: str | None = None
    expired_token: str | None = None
    server_log: Path | None = None
    source: Path | None = None

    def has(self, capability: str) -> bool:
        if capability not in CAPABILITIES:
            raise KeyError(f"unknown capability {capability!r}; known: {sorted(CAPABILITIES)}")
        if capability in _NEEDS_VALUE and getattr(self, _NEEDS_VALUE[capability]) is None:
            return False
        return self.capabilities.get(capability, True)

    def missing_reason(self, capability: str) -> str:
        """Why a test of ``capability`` cannot run against this target, in words for a skip message."""
        where = f" ({self.source})" if self.source else ""
        if capability in _NEEDS_VALUE and getattr(self, _NEEDS_VALUE[capability]) is None:
            return (
                f"the target profile{where} gives no {_NEEDS_VALUE[capability]}, needed for {CAPABILITIES[capability]}"
            )
        return f"the target profile{where} says the target has no {CAPABILITIES[capability]}"

    def limit(self, name: str) -> int:
        return self.limits[name]

    def optional_limit(self, name: str) -> int | None:
        """A limit without a default (``OPTIONAL_LIMITS``): ``None`` when the target declared none."""
        return self.limits.get(name)


# Capabilities that need a value from the profile before a test can use them.
_NEEDS_VALUE = {
    "registration_closed": "registration_closed_url",
    "expired_token": "expired_token",
    "server_log": "server_log",
}


def load_profile(path: Path) -> TargetProfile:
    """Read a JSON (``.json``) or TOML (anything else) profile; unknown keys are an error, not ignored."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read the target profile {path}: {exc}") from exc
    return profile_from_dict(data, source=path)


def profile_from_dict(data: dict[str, Any], *, source: Path | None = None) -> TargetProfile:
    known = {f.name for f in fields(TargetProfile)} - {"source"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProfileError(f"unknown key(s) {unknown} in the target profile; known: {sorted(known)}")
    capabilities = dict(data.get("capabilities", {}))
    bad = sorted(k for k, v in capabilities.items() if k not in CAPABILITIES or not isinstance(v, bool))
    if bad:
        raise ProfileError(
            f"capabilities {bad} are unknown or not true/false; known capabilities: {sorted(CAPABILITIES)}"
        )
    limits = {**DEFAULT_LIMITS, **data.get("limits", {})}
    known_limits = sorted([*DEFAULT_LIMITS, *OPTIONAL_LIMITS])
    bad = sorted(k for k, v in limits.items() if k not in known_limits or not isinstance(v, int) or v <= 0)
    if bad:
        raise ProfileError(f"limits {bad} are unknown or not positive integers; known: {known_limits}")
    server_log = data.get("server_log")
    return TargetProfile(
        name=str(data.get("name", "target")),
        capabilities=capabilities,
        limits=limits,
        failing_prompt=str(data.get("failing_prompt", DEFAULT_FAILING_PROMPT)),
        registration_closed_url=data.get("registration_closed_url"),
        expired_token=data.get("expired_token"),
        server_log=Path(server_log) if server_log else None,
        source=source,
    )


__all__ = [
    "CAPABILITIES",
    "DEFAULT_FAILING_PROMPT",
    "DEFAULT_LIMITS",
    "ProfileError",
    "TargetProfile",
    "load_profile",
    "profile_from_dict",
]
