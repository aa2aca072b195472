"""Rows to file bytes: CSV, TXT, JSON and JSON Lines by hand, XLSX through ``containers``."""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping, Sequence

from utilities.gen.containers import workbook_members, write_zip
from utilities.gen.content import CP1252_SAFE_MIXES, GenSpec, generate_rows


def generate(spec: GenSpec) -> bytes:
    """The file ``spec`` describes, byte for byte the same for the same spec."""
    return render(spec, generate_rows(spec))


def render(spec: GenSpec, rows: Sequence[Mapping[str, str]]) -> bytes:
    """Write ``rows`` in the format, encoding, delimiter and line ending of ``spec``."""
    columns = spec.columns
    if spec.fmt == "xlsx":
        return write_zip(workbook_members(columns, rows))
    if spec.fmt == "csv":
        text = "".join(
            csv_line(values, spec.delimiter, spec.line_ending)
            for values in [columns, *([row[c] for c in columns] for row in rows)]
        )
    elif spec.fmt == "txt":
        text = "".join(_txt_line(index, row["prompt"]) + spec.line_ending for index, row in enumerate(rows, 1))
    elif spec.fmt == "json":
        records = [{c: row[c] for c in columns} for row in rows]
        # json escapes line breaks inside strings, so every literal "\n" here is indentation.
        text = json.dumps(records, ensure_ascii=False, indent=2).replace("\n", spec.line_ending) + spec.line_ending
    else:
        text = "".join(json.dumps({c: row[c] for c in columns}, ensure_ascii=False) + spec.line_ending for row in rows)
    return _encode(text, spec.encoding)


def _csv_cell(value: str, delimiter: str) -> str:
    # csv.writer leaves a lone "\r" unquoted when the terminator is "\n", which splits the record on reading.
    if value == "" or any(char in value for char in (delimiter, '"', "\r", "\n")):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_line(values: Sequence[str], delimiter: str, line_ending: str) -> str:
    return delimiter.join(_csv_cell(value, delimiter) for value in values) + line_ending


def _txt_line(index: int, prompt: str) -> str:
    if "\r" in prompt or "\n" in prompt or not prompt.strip():
        raise ValueError(f"txt holds one prompt per line, but prompt {index} is blank or spans lines")
    return prompt


def _encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-16":
        # Python's "utf-16" codec follows the machine's byte order; pin little-endian so bytes match anywhere.
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        char = exc.object[exc.start]
        line = exc.object.count("\n", 0, exc.start) + 1
        raise ValueError(
            f"{char!r} (U+{ord(char):04X}) on line {line} has no {encoding} form; "
            f"use mixes from {CP1252_SAFE_MIXES} with a Latin-script locale"
        ) from exc
