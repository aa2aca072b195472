"""CSV and Excel "Unicode text" to a ``ParsedTable``: delimiter sniffing, strict quotes, errors by line.

Policies on top of the shared ones in ``table``:

- The delimiter is one of ``,`` ``;`` and tab, or none at all (a one-column file). Each candidate reads
  the first records; the winner has a ``prompt`` header, then a consistent field count, then the most
  columns. ``csv.Sniffer`` is not used: it guesses letters as delimiters in one-column files.
- Quoting is strict, so an unterminated quote is a ``corrupt_csv`` naming the line where its record
  starts instead of a file silently swallowed into one field.
- A record with more fields than the header is a ``corrupt_csv`` unless the extra fields are all empty
  (trailing delimiters, which Excel writes); a record with fewer fields is padded with ``""``.
- Empty lines and records whose cells are all empty are skipped and get no row number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from ..errors import InvalidContent
from .limits import IngestLimits
from .table import (
    PROMPT_COLUMN,
    ParsedTable,
    RawRecord,
    build_table,
    invalid,
    is_blank,
    is_blank_record,
    normalise_name,
)

DELIMITERS = (",", ";", "\t")
_SNIFF_RECORDS = 50
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def parse_csv(text: str, limits: IngestLimits) -> ParsedTable:
    _raise_field_size_limit(limits)
    delimiter = sniff_delimiter(text)
    records = _records(text, delimiter)
    for line, cells in records:
        if not is_blank_record(cells):
            body = _fitted(records, len(cells), delimiter)
            return build_table(cells, body, source_format="csv", limits=limits, header_where=("line", line))
    return build_table([], [], source_format="csv", limits=limits)


def _fitted(records: Iterator[tuple[int, list[str]]], width: int, delimiter: str) -> Iterator[RawRecord]:
    for line, cells in records:
        if len(cells) > width:
            if any(not is_blank(cell) for cell in cells[width:]):
                raise _too_many_fields(line, len(cells), width, delimiter)
            cells = cells[:width]
        yield RawRecord(cells, ("line", line))


def sniff_delimiter(text: str) -> str:
    """The delimiter to read ``text`` with; a character absent from the text stands for "one column"."""
    candidates = [*DELIMITERS, _absent_character(text)]
    scores = [(*_score(text, delimiter), -order) for order, delimiter in enumerate(candidates)]
    return candidates[scores.index(max(scores))]


def _score(text: str, delimiter: str) -> tuple[bool, bool, int]:
    widths: list[int] = []
    header: list[str] | None = None
    consistent = True
    try:
        for _, cells in _records(text, delimiter):
            if is_blank_record(cells):
                continue
            if header is None:
                header = cells
            widths.append(len(cells))
            if len(widths) >= _SNIFF_RECORDS:
                break
    except InvalidContent:
        # Only the chosen delimiter's reading error reaches the user; a wrong candidate just scores low.
        consistent = False
    if header is None:
        return (False, False, 0)
    has_prompt = any(normalise_name(name) == PROMPT_COLUMN for name in header)
    consistent = consistent and all(width == len(header) for width in widths)
    return (has_prompt, consistent, len(header))


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Each record with the physical line it starts on; ``csv.Error`` becomes ``corrupt_csv``."""
    # newline="" hands the reader \r, \n and \r\n untranslated, so quoted line breaks survive byte-exact.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _corrupt(start, str(exc), delimiter) from None
        yield start, cells


def _corrupt(line: int, reason: str, delimiter: str) -> InvalidContent:
    one_column = delimiter not in DELIMITERS
    hint = " If each line is one prompt, upload it as a .txt file instead." if one_column else ""
    if "unexpected end of data" in reason:
        message = (
            f'Line {line}: a quoted value opens here but its closing quote (") is missing, so the rest '
            "of the file would be read as one value. Add the closing quote." + hint
        )
    elif "expected after" in reason:
        message = (
            f"Line {line}: a quoted value is followed by other text before the next delimiter. Inside a "
            'quoted value, write a quote as two quotes ("").' + hint
        )
    else:
        message = f"Line {line}: the CSV could not be read ({reason})." + hint
    return invalid("corrupt_csv", message, line=line, reason=reason)


def _too_many_fields(line: int, actual: int, expected: int, delimiter: str) -> InvalidContent:
    name = _DELIMITER_NAMES.get(delimiter, "delimiter")
    return invalid(
        "corrupt_csv",
        f"Line {line}: this row has {actual} values but the header has {expected} columns. "
        f"Put values that contain a {name} in double quotes.",
        line=line,
        expected=expected,
        actual=actual,
    )


def _absent_character(text: str) -> str:
    # Private-use code points: a delimiter that never occurs reads every line as one field.
    return next(chr(code) for code in range(0xE000, 0xF900) if chr(code) not in text)


def _raise_field_size_limit(limits: IngestLimits) -> None:
    # Process-wide; the default 131,072 is below 4 x 32,000-character prompts. A field can never be longer
    # than the whole upload, so max_bytes means the limit is never the error a user sees.
    wanted = max(limits.max_prompt_chars * 4, limits.max_bytes)
    if csv.field_size_limit() < wanted:
        csv.field_size_limit(wanted)
