"""How the oracles word a problem: values shown short, a hint at why two texts differ, long lists capped, and the
two ways to compare cell text (exact, or as CSV canonicalises it)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from utilities.check.download_reader import (
    DANGEROUS_PREFIXES,
    NEUTRALISER,
)

MAX_REPORTED = 20


@dataclass
class Findings:
    """What an oracle found wrong, one sentence each; a report with none is ``ok``."""

    issues: list[str] = field(default_factory=list, kw_only=True)

    def problems(self) -> list[str]:
        return list(self.issues)

    @property
    def ok(self) -> bool:
        return not self.issues


def csv_canon(value: str | None) -> str | None:
    """The text a CSV shows for ``value`` once un-neutralised.

    The contract leaves ``'=x`` ambiguous: it is both the real text ``'=x`` (not dangerous, so written
    as is) and the neutralised form of ``=x``. Comparing through this function accepts both readings.
    """
    if value is not None and value.startswith(NEUTRALISER) and value[1:].startswith(DANGEROUS_PREFIXES):
        return value[1:]
    return value


def exact(value: str | None) -> str | None:
    return value


def capped(messages: list[str], what: str) -> list[str]:
    if len(messages) <= MAX_REPORTED:
        return messages
    return [*messages[:MAX_REPORTED], f"... and {len(messages) - MAX_REPORTED} more {what}"]


def row_key(message: str) -> int:
    found = re.match(r"row (\d+):", message)
    return int(found.group(1)) if found else 0


def show(value: object, limit: int = 60) -> str:
    if value is None:
        return "missing"
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "…"
    return repr(value)


def hint(have: str | None, want: str | None) -> str:
    """Why two texts differ, when the reason is one people miss by eye."""
    if have is None or want is None:
        return ""
    if have.strip() == want.strip():
        return " (differs only in leading/trailing whitespace)"
    if unicodedata.normalize("NFC", have) == unicodedata.normalize("NFC", want):
        return " (differs only in Unicode normalisation)"
    if have.replace("\r\n", "\n") == want.replace("\r\n", "\n"):
        return " (differs only in line endings)"
    offset = next((k for k, (x, y) in enumerate(zip(have, want, strict=False)) if x != y), min(len(have), len(want)))
    return f" (first difference at character {offset + 1})" if offset >= 40 else ""
