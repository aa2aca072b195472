"""Plain text and pasted text: one prompt per line (CRLF, LF or CR); blank lines are skipped, not counted."""

from __future__ import annotations

from .encoding import LINE_BREAK
from .limits import IngestLimits
from .table import PROMPT_COLUMN, ParsedTable, RawRecord, build_table


def parse_lines(text: str, limits: IngestLimits, *, source_format: str = "txt") -> ParsedTable:
    """Each line is a prompt kept exactly (no stripping); ``details.line`` names the physical line."""
    records = (
        RawRecord([line], ("line", number))
        for number, line in enumerate(LINE_BREAK.split(text.removeprefix("\ufeff")), start=1)
    )
    return build_table([PROMPT_COLUMN], records, source_format=source_format, limits=limits)
