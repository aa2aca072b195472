"""The limits an upload is held to; defaults follow US-003 (1000 prompts, 32,000 characters, 10 MiB)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestLimits:
    max_prompts: int = 1000
    max_prompt_chars: int = 32_000
    max_bytes: int = 10 * 1024 * 1024
