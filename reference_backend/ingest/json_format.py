"""JSON and JSON Lines to a ``ParsedTable``.

Accepted shapes: a list of strings, a list of objects with a ``prompt`` field, ``{"prompts": [...]}`` of
either; JSON Lines holds one string or object per line and skips blank lines. Strings and objects may mix:
a string is the prompt of its record. Columns are the union of the objects' keys in first-seen order; a
missing field is ``""``, ``null`` is ``""``, other non-strings are their JSON text (``3``, ``true``,
``[1, 2]``). An object without a prompt field while others have one is a row failed as ``empty_prompt``.
Errors name the element (1-based) for JSON and the line for JSON Lines.

Hostile documents: an object that repeats a key is a ``duplicate_column`` (``json`` would keep the last
value silently); a number too long for Python to convert is ``invalid_json``; a document with more than
``max_values`` values is refused (``too_many_values``) before it is decoded, because decoding builds every
value (``[[],[],...]`` costs 80 bytes of memory per 3 bytes of file); JSON Lines are read lazily.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from ..errors import InvalidContent
from .encoding import line_spans
from .limits import IngestLimits
from .table import (
    PROMPT_COLUMN,
    ParsedTable,
    RawRecord,
    build_table,
    invalid,
    normalise_name,
    too_many_records,
)

_SHAPES = 'a list of prompts, a list of objects with a "prompt" field, or {"prompts": [...]}'
_SPACE = re.compile(r"[ \t\r\n]*")  # JSON's own whitespace
_BLANK_LINE = re.compile(r"\s*")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


class _Object(dict[str, Any]):
    """A decoded JSON object that remembers the first key it held twice."""

    duplicate: str | None = None


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object(pairs)
    if len(result) < len(pairs):
        seen: set[str] = set()
        result.duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
    return result


# strict=False lets a raw control character inside a string through, so the shared rules can name its row.
_DECODER = json.JSONDecoder(strict=False, object_pairs_hook=_object)


def parse_json(text: str, limits: IngestLimits) -> ParsedTable:
    _check_value_count(text, limits)
    try:
        document = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        hint = " If the file holds one JSON value per line, name it .jsonl." if exc.msg == "Extra data" else ""
        raise invalid(
            "invalid_json",
            f"Line {exc.lineno}, character {exc.colno}: the file is not valid JSON ({exc.msg}).{hint}",
            line=exc.lineno,
            character=exc.colno,
        ) from None
    except RecursionError:
        raise invalid("invalid_json", "The JSON is nested too deeply to read.") from None
    except ValueError as exc:
        # int() refuses numbers over 4,300 digits (CVE-2020-10735); json lets that ValueError through.
        raise invalid("invalid_json", f"The file holds a number JSON readers cannot convert ({exc}).") from None
    if isinstance(document, dict) and isinstance(document.get("prompts"), list):
        document = document["prompts"]
    if not isinstance(document, list):
        raise invalid("invalid_json", f"The JSON must be {_SHAPES}; this file holds {_kind(document)}.")
    return _table(list(enumerate(document, start=1)), "element", "json", limits)


def parse_jsonl(text: str, limits: IngestLimits) -> ParsedTable:
    _check_value_count(text, limits)
    elements: list[tuple[int, Any]] = []
    for number, (start, end, _) in enumerate(line_spans(text), start=1):
        if number > limits.max_records_read:
            raise too_many_records(limits)
        if not _BLANK_LINE.fullmatch(text, start, end):
            value_start = _SPACE.match(text, start, end).end()
            elements.append((number, _decode_line(text, value_start, start, end, number)))
    return _table(elements, "line", "jsonl", limits)


def _decode_line(text: str, pos: int, line_start: int, line_end: int, number: int) -> Any:
    """The value on one line, decoded in place: slicing a 10 MB line out first would double its cost."""

    def error(column: int, reason: str) -> InvalidContent:
        return invalid(
            "invalid_json",
            f"Line {number}, character {column}: this line is not valid JSON ({reason}).",
            line=number,
            character=column,
        )

    try:
        value, end = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        raise error(min(exc.pos, line_end) - line_start + 1, exc.msg) from None
    except RecursionError:
        raise invalid("invalid_json", f"Line {number}: the JSON is nested too deeply.", line=number) from None
    except ValueError as exc:
        raise invalid(
            "invalid_json", f"Line {number}: a number JSON readers cannot convert ({exc}).", line=number
        ) from None
    if end > line_end:
        # strict=False lets a string run on over a raw line break; on a line of its own it is unterminated.
        raise error(pos - line_start + 1, "Unterminated string starting at")
    trailing = _SPACE.match(text, end, line_end).end()
    if trailing < line_end:
        raise error(trailing - line_start + 1, "Extra data")
    return value


def _check_value_count(text: str, limits: IngestLimits) -> None:
    """Refuse a document of more than ``max_values`` values before decoding builds them all."""

    def count(skeleton: str) -> int:
        return skeleton.count(",") + skeleton.count("[") + skeleton.count("{")

    # The raw count includes commas inside strings, so it only ever overestimates: cheap and usually enough.
    if count(text) <= limits.max_values:
        return
    values = count(_STRING.sub("", text))
    if values > limits.max_values:
        raise invalid(
            "too_many_values",
            f"The JSON holds about {values:,} values; the limit is {limits.max_values:,} (a batch is at most "
            f"{limits.max_prompts:,} prompts of at most {limits.max_columns:,} fields). Split it into smaller files.",
            limit=limits.max_values,
            actual=values,
        )


def _table(elements: list[tuple[int, Any]], place: str, source_format: str, limits: IngestLimits) -> ParsedTable:
    """``elements`` pairs each value with its element or line number, as ``place`` says."""
    columns: dict[str, None] = {}
    for number, element in elements:
        if isinstance(element, dict):
            duplicate = getattr(element, "duplicate", None)
            if duplicate is not None:
                raise invalid(
                    "duplicate_column",
                    f'{place.capitalize()} {number} has the field "{duplicate}" twice; a reader would keep only '
                    "one of the two values. Remove or rename one of them.",
                    **{place: number},
                    column=duplicate,
                )
            columns.update(dict.fromkeys(element))
        elif not isinstance(element, str):
            raise invalid(
                "invalid_json",
                f"{place.capitalize()} {number} is {_kind(element)}; each prompt must be a string or an "
                'object with a "prompt" field.',
                **{place: number},
            )
    header = list(columns) or [PROMPT_COLUMN]
    prompt_column = next((name for name in header if normalise_name(name) == PROMPT_COLUMN), None)
    records = _records(elements, place, header, prompt_column)
    return build_table(header, records, source_format=source_format, limits=limits)


def _records(
    elements: list[tuple[int, Any]], place: str, header: list[str], prompt_column: str | None
) -> Iterator[RawRecord]:
    for number, element in elements:
        if isinstance(element, str):
            if prompt_column is None:
                continue
            fields = {prompt_column: element}
        else:
            fields = {key: _text(value) for key, value in element.items()}
        yield RawRecord([fields.get(name, "") for name in header], (place, number))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a string"
