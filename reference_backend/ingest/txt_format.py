"""Plain text and pasted text: one prompt per line (CRLF, LF or CR); blank lines are skipped, not counted."""

from __future__ import annotations

from collections.abc import Iterator

from .encoding import line_spans
from .limits import IngestLimits
from .table import PROMPT_COLUMN, ParsedTable, RawRecord, build_table, value_too_long


def parse_lines(text: str, limits: IngestLimits, *, source_format: str = "txt") -> ParsedTable:
    """Each line is a prompt kept exactly (no stripping); ``details.line`` names the physical line."""
    return build_table([PROMPT_COLUMN], _records(text, limits), source_format=source_format, limits=limits)


def _records(text: str, limits: IngestLimits) -> Iterator[RawRecord]:
    for number, (start, end, _) in enumerate(line_spans(text), start=1):
        # Refused before it is copied out of the text, like the CSV reader's field limit.
        if end - start > limits.max_value_chars:
            raise value_too_long(limits, row=None, where=("line", number), actual=end - start)
        yield RawRecord([text[start:end]], ("line", number))
