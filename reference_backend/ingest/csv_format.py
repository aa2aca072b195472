"""CSV and Excel "Unicode text" to a ``ParsedTable``: delimiter sniffing, strict quotes, errors by line.

Policies on top of the shared ones in ``table``:

- The delimiter is one of ``,`` ``;`` and tab, or none at all (a one-column file). Each candidate reads
  the first records; the winner has a ``prompt`` header, then a consistent field count, then the most
  columns; when that is one column, the file is read with none, so no character of a prompt is taken
  for a delimiter. ``csv.Sniffer`` is not used: it guesses letters as delimiters in one-column files.
- Quoting is strict, so an unterminated quote is a ``corrupt_csv`` naming the line where its record
  starts instead of a file silently swallowed into one field.
- A record with more fields than the header is a ``corrupt_csv`` unless the extra fields are all empty
  (trailing delimiters, which Excel writes); a record with fewer fields is padded with ``""``.
- Empty lines and records whose cells are all empty are skipped and get no row number.
- Bounded work for hostile files: the delimiter is sniffed on the first 64 Ki characters; a value longer than
  ``max_value_chars`` or spanning more than ``max_record_lines`` lines stops the reader (``value_too_long``),
  and so does a record holding more than ``max_record_fields`` delimiters (``too_many_columns``), all before
  the reader builds them; lines are handed to the reader one by one instead of through ``io.StringIO``,
  which would copy the whole text at four bytes a character.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

from ..errors import InvalidContent
from .encoding import line_spans
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
    value_too_long,
)

DELIMITERS = (",", ";", "\t")
_SNIFF_RECORDS = 50
_SNIFF_CHARS = 64 * 1024
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_FIELD_LIMIT_REASON = "field larger than field limit"
_OPEN_QUOTE_AT_END = "unexpected end of data"
_QUOTE_HINT = " If a quoted value's closing quote is missing, the rest of the file reads as one value: add the quote."
# Characters that never occur in prompts; the first one absent from a file serves as its "no delimiter".
_UNUSED_CHARACTERS = ("\ue000", "\uffff", "\U0010ffff", "\U000ffffd")
_PRIVATE_USE = range(0xE000, 0xF900)
_NOT_PRIVATE_USE = re.compile("[^\ue000-\uf8ff]+")


def parse_csv(text: str, limits: IngestLimits) -> ParsedTable:
    _raise_field_size_limit(limits)
    delimiter = sniff_delimiter(text, limits)
    records = _records(text, delimiter, limits)
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


def sniff_delimiter(text: str, limits: IngestLimits) -> str:
    """The delimiter to read ``text`` with; a character absent from the text stands for "one column".

    Only the first 64 Ki characters are read, four times over; the sample's last record may be cut short,
    so its width and a quote left open at the sample's end say nothing about the delimiter.
    """
    sample = text[:_SNIFF_CHARS]
    truncated = len(text) > len(sample)
    candidates = [*DELIMITERS, _absent_character(text)]
    scores = [(*_score(sample, delimiter, truncated, limits), -order) for order, delimiter in enumerate(candidates)]
    best = max(scores)
    if best[1:3] == (True, 1) and scores[-1][:3] == best[:3]:
        # One column: no character separates fields, so a delimiter on a line is the prompt's own text (a
        # line "," is the prompt ",", not two empty cells to skip).
        return candidates[-1]
    return candidates[scores.index(best)]


def _score(sample: str, delimiter: str, truncated: bool, limits: IngestLimits) -> tuple[bool, bool, int]:
    widths: list[int] = []
    header: list[str] | None = None
    consistent = True
    try:
        for _, cells in _records(sample, delimiter, limits):
            if is_blank_record(cells):
                continue
            if header is None:
                header = cells
            widths.append(len(cells))
            if len(widths) >= _SNIFF_RECORDS:
                break
        else:
            if truncated and len(widths) > 1:
                widths.pop()
    except InvalidContent as exc:
        # Only the chosen delimiter's reading error reaches the user; a wrong candidate just scores low.
        consistent = truncated and _OPEN_QUOTE_AT_END in str(exc.details.get("reason", ""))
    if header is None:
        return (False, False, 0)
    has_prompt = any(normalise_name(name) == PROMPT_COLUMN for name in header)
    consistent = consistent and all(width == len(header) for width in widths)
    return (has_prompt, consistent, len(header))


class _Lines:
    """The lines the reader parses, refusing a record the reader should not build.

    The reader turns each field into a list entry and a string, about 60 bytes for an ``ab,`` of input, so
    a record of more than ``max_record_fields`` delimiters is refused (one 10 MB line of them would cost
    200 MB). They are counted raw, quoted ones too: a stray quote inside an unquoted value is literal text
    to the reader, so no cheap scan can tell which delimiters will build fields; a real prompt holds far
    fewer. A record is read a line at a time (a few microseconds each), so one spanning more than
    ``max_record_lines`` lines, which is what an unclosed quote in a file of short lines looks like, is
    refused too. And when a record's delimiters cut it into pieces averaging more than twice
    ``max_value_chars``, one of its values must be over that limit (a value shrinks to half its text at
    most, ``""`` being one quote): refused before the line is copied out of the text. ``start_record``
    resets the counts.
    """

    def __init__(self, text: str, delimiter: str, limits: IngestLimits) -> None:
        self.text = text
        self.delimiter = delimiter
        self.limits = limits
        self.record_line = 1
        self.lines = 0
        self.delimiters = 0
        self.chars = 0

    def start_record(self, line: int) -> None:
        self.record_line = line
        self.lines = 0
        self.delimiters = 0
        self.chars = 0

    def __iter__(self) -> Iterator[str]:
        limit = self.limits.max_value_chars
        fields = self.limits.max_record_fields
        for start, _, end in line_spans(self.text):
            self.lines += 1
            self.delimiters += self.text.count(self.delimiter, start, end)
            self.chars += end - start
            if self.delimiters > fields:
                raise _too_wide(self.record_line, fields, self.delimiter)
            if self.lines > self.limits.max_record_lines:
                raise _too_many_lines(self.record_line, self.limits.max_record_lines)
            if self.chars - self.delimiters > (self.delimiters + 1) * (2 * limit + 2):
                raise value_too_long(self.limits, row=None, where=("line", self.record_line), hint=_QUOTE_HINT)
            yield self.text[start:end]


def _records(text: str, delimiter: str, limits: IngestLimits) -> Iterator[tuple[int, list[str]]]:
    """Each record with the physical line it starts on; ``csv.Error`` becomes ``corrupt_csv``."""
    # Line ends stay on the lines, so quoted line breaks survive byte-exact (as with newline="").
    lines = _Lines(text, delimiter, limits)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        lines.start_record(start)
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if str(exc).startswith(_FIELD_LIMIT_REASON):
                raise value_too_long(limits, row=None, where=("line", start), hint=_QUOTE_HINT) from None
            raise _corrupt(start, str(exc), delimiter) from None
        yield start, cells


def _corrupt(line: int, reason: str, delimiter: str) -> InvalidContent:
    one_column = delimiter not in DELIMITERS
    hint = " If each line is one prompt, upload it as a .txt file instead." if one_column else ""
    if _OPEN_QUOTE_AT_END in reason:
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


def _too_wide(line: int, limit: int, delimiter: str) -> InvalidContent:
    name = _DELIMITER_NAMES.get(delimiter, "delimiter")
    return invalid(
        "too_many_columns",
        f"Line {line}: the record that starts here holds more than {limit:,} {name}s, so it cannot be a row of "
        "prompts. Check that the file is a table with one row per prompt.",
        line=line,
        limit=limit,
    )


def _too_many_lines(line: int, limit: int) -> InvalidContent:
    return invalid(
        "value_too_long",
        f"Line {line}: the record that starts here spans more than {limit:,} lines, so a value in it is far "
        "longer than any prompt." + _QUOTE_HINT,
        line=line,
        limit_lines=limit,
    )


def _absent_character(text: str) -> str:
    # A delimiter that never occurs reads every line as one field. Checking a few candidates costs a scan
    # each; a file holding all of them (hostile) pays one pass to collect its private-use characters.
    for candidate in _UNUSED_CHARACTERS:
        if candidate not in text:
            return candidate
    present = set(_NOT_PRIVATE_USE.sub("", text))
    absent = next((chr(code) for code in _PRIVATE_USE if chr(code) not in present), None)
    if absent is None:
        raise invalid(
            "corrupt_csv",
            f"The file holds every one of the {len(_PRIVATE_USE):,} private-use characters (U+E000 to U+F8FF); "
            "it is not a table of prompts. Upload the prompts as CSV, TXT, JSON or XLSX.",
        )
    return absent


def _raise_field_size_limit(limits: IngestLimits) -> None:
    # The reader's buffer grows at four bytes a character, so the limit is what bounds a long field's
    # memory. It is process-wide: raised, never lowered, as other readers in the process may need more.
    if csv.field_size_limit() < limits.max_value_chars:
        csv.field_size_limit(limits.max_value_chars)
