"""JSON and JSON Lines to a ``ParsedTable``.

Accepted shapes: a list of strings, a list of objects with a ``prompt`` field, ``{"prompts": [...]}`` of
either; JSON Lines holds one string or object per line and skips blank lines. Strings and objects may mix:
a string is the prompt of its record. Columns are the union of the objects' keys in first-seen order; a
missing field is ``""``, ``null`` is ``""``, other non-strings are their JSON text (``3``, ``true``,
``[1, 2]``). An object without a prompt field while others have one is an ``empty_prompt``. Errors name
the element (1-based) for JSON and the line for JSON Lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .encoding import LINE_BREAK
from .limits import IngestLimits
from .table import PROMPT_COLUMN, ParsedTable, RawRecord, build_table, invalid, normalise_name

# strict=False lets a raw control character inside a string through, so the shared rules can name its row.
_DECODER = json.JSONDecoder(strict=False)
_SHAPES = 'a list of prompts, a list of objects with a "prompt" field, or {"prompts": [...]}'


def parse_json(text: str, limits: IngestLimits) -> ParsedTable:
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
    if isinstance(document, dict) and isinstance(document.get("prompts"), list):
        document = document["prompts"]
    if not isinstance(document, list):
        raise invalid("invalid_json", f"The JSON must be {_SHAPES}; this file holds {_kind(document)}.")
    return _table(list(enumerate(document, start=1)), "element", "json", limits)


def parse_jsonl(text: str, limits: IngestLimits) -> ParsedTable:
    elements: list[tuple[int, Any]] = []
    for number, line in enumerate(LINE_BREAK.split(text.removeprefix("\ufeff")), start=1):
        if not line.strip():
            continue
        try:
            elements.append((number, _DECODER.decode(line)))
        except json.JSONDecodeError as exc:
            raise invalid(
                "invalid_json",
                f"Line {number}, character {exc.colno}: this line is not valid JSON ({exc.msg}).",
                line=number,
                character=exc.colno,
            ) from None
        except RecursionError:
            raise invalid("invalid_json", f"Line {number}: the JSON is nested too deeply.", line=number) from None
    return _table(elements, "line", "jsonl", limits)


def _table(elements: list[tuple[int, Any]], place: str, source_format: str, limits: IngestLimits) -> ParsedTable:
    """``elements`` pairs each value with its element or line number, as ``place`` says."""
    columns: dict[str, None] = {}
    for number, element in elements:
        if isinstance(element, dict):
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
