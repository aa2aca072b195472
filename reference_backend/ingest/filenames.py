"""Upload names: a safe display name, and the extension that decides which parser reads the file."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

ALLOWED_EXTENSIONS: frozenset[str] = frozenset({".csv", ".xlsx", ".txt", ".json", ".jsonl"})
MAX_NAME_CHARS = 120
FALLBACK_NAME = "upload"

# Characters Windows refuses in names, plus the quote and semicolon that would break a Content-Disposition.
_AWKWARD = re.compile(r'[<>:"|?*;]')


def _is_invisible(char: str) -> bool:
    # Cc: C0/C1 controls incl. NUL; Cf: bidi overrides (U+202E) that make "x\u202evsc.exe" look like a .csv.
    return unicodedata.category(char) in {"Cc", "Cf"}


def safe_filename(name: str) -> str:
    """The basename of ``name`` after percent- and NFKC-decoding, without controls, at most 120 characters.

    Trailing dots and spaces go (Windows drops them too, so ``"x.csv."`` is ``"x.csv"``); an empty result
    becomes ``"upload"``. The extension survives truncation.
    """
    text = unicodedata.normalize("NFKC", unquote(name or ""))
    text = "".join(char for char in text if not _is_invisible(char))
    text = re.split(r"[/\\]", text)[-1]
    text = _AWKWARD.sub("_", text).strip().rstrip(". ").strip()
    stem, dot, ext = text.rpartition(".")
    if not dot:
        stem, ext = text, ""
    suffix = f".{ext}" if dot else ""
    if len(suffix) >= MAX_NAME_CHARS:
        return text[:MAX_NAME_CHARS]
    stem = stem[: MAX_NAME_CHARS - len(suffix)].rstrip()
    return f"{stem or FALLBACK_NAME}{suffix}"


def extension_of(safe_name: str) -> str:
    """The lower-cased extension of an already sanitised name, with its dot, or ``""``."""
    _, dot, ext = safe_name.rpartition(".")
    return f".{ext.lower()}" if dot and ext else ""
