"""Read an uploaded prompt file the way a user sees it, independently of any target's ingest code."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import charset_normalizer
import openpyxl

PROMPT_COLUMN = "prompt"
CSV_DELIMITERS = (",", ";", "\t")
FORMATS = ("csv", "xlsx", "txt", "json", "jsonl")

# Candidates for files without a BOM that are not valid UTF-8; anything else is refused, not guessed.
_FALLBACK_ENCODINGS = ["utf_16", "utf_16_le", "utf_16_be", "cp1252"]
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class InputFormatError(ValueError):
    """The file cannot be read as a prompt table (unknown type, no prompt column, bad encoding...)."""


@dataclass(frozen=True)
class InputTable:
    """The rows a user uploaded: every cell as text, columns in file order, empty records left out."""

    columns: list[str]
    prompt_column: str
    rows: list[dict[str, str]]
    source_format: str = "txt"
    filename: str | None = None
    encoding: str | None = field(default=None, compare=False)

    @property
    def prompts(self) -> list[str]:
        return [row[self.prompt_column] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


def read_input(source: str | Path | bytes, filename: str | None = None) -> InputTable:
    """Read an upload from a path or raw bytes; ``filename`` picks the format (bytes without one = paste)."""
    if isinstance(source, bytes):
        data = source
        if filename is None:
            return read_pasted(decode_text(data)[0])
    else:
        path = Path(source)
        data = path.read_bytes()
        filename = filename or path.name
    fmt = Path(filename).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputFormatError(f"{filename}: unsupported file type {fmt or '(none)'!r}, expected {FORMATS}")
    if fmt in ("json", "jsonl"):
        return _read_json(data, filename, lines=fmt == "jsonl")
    reader = {"csv": _read_csv, "xlsx": _read_xlsx, "txt": _read_txt}
    return reader[fmt](data, filename)


def read_pasted(text: str) -> InputTable:
    """Pasted text: one prompt per line, blank lines skipped."""
    return _lines_table(text, "text", None, None)


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode by BOM if there is one, else strict UTF-8, else charset-normalizer among a few candidates."""
    if data.startswith(b"\xef\xbb\xbf"):
        return _strict(data, "utf-8-sig"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _strict(data, "utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data, cp_isolation=_FALLBACK_ENCODINGS).best()
    if best is None:
        raise InputFormatError("cannot decode the file as UTF-8, UTF-16 or Windows-1252")
    return str(best), best.encoding


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"invalid {encoding} at byte {exc.start}") from exc


def _read_csv(data: bytes, filename: str) -> InputTable:
    text, encoding = decode_text(data)
    delimiter = _pick_delimiter(text)
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not records:
        raise InputFormatError(f"{filename}: the file is empty")
    columns = _header(records[0], filename)
    prompt_column = _find_prompt_column(columns, filename)
    rows = []
    for line, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        extra = record[len(columns) :]
        if any(cell.strip() for cell in extra):
            raise InputFormatError(
                f"{filename}: record {line} has {len(record)} cells but the header has {len(columns)}"
            )
        cells = record[: len(columns)] + [""] * (len(columns) - len(record))
        rows.append(dict(zip(columns, cells, strict=True)))
    return InputTable(columns, prompt_column, rows, "csv", filename, encoding)


def _pick_delimiter(text: str) -> str:
    """The delimiter whose header names a prompt column and that leaves the fewest ragged records."""
    scored = []
    for order, delimiter in enumerate(CSV_DELIMITERS):
        records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = _trim(next(records, []))
        if not any(_is_prompt(name) for name in header):
            continue
        ragged = sum(1 for record in records if len(_trim(record)) not in (0, len(header)))
        scored.append((ragged, order, delimiter))
    return min(scored)[2] if scored else ","


def _trim(cells: list[str]) -> list[str]:
    """Drop trailing empty cells, which spreadsheet exports add freely."""
    end = len(cells)
    while end and not cells[end - 1].strip():
        end -= 1
    return cells[:end]


def _header(cells: list[str], filename: str) -> list[str]:
    columns = _trim(cells)
    for number, name in enumerate(columns, start=1):
        if not name.strip():
            raise InputFormatError(f"{filename}: column {number} has no header")
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise InputFormatError(f"{filename}: duplicate column names {duplicates}")
    return columns


def _is_prompt(name: str) -> bool:
    return name.strip().casefold() == PROMPT_COLUMN


def _find_prompt_column(columns: list[str], filename: str) -> str:
    for name in columns:
        if _is_prompt(name):
            return name
    raise InputFormatError(f"{filename}: no {PROMPT_COLUMN!r} column among {columns}")


def _read_xlsx(data: bytes, filename: str) -> InputTable:
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and XML errors alike for a bad file
        raise InputFormatError(f"{filename}: not a readable XLSX workbook ({exc})") from exc
    try:
        named = [ws for ws in workbook.worksheets if ws.title.strip().casefold() == "prompts"]
        sheet = named[0] if named else workbook.worksheets[0]
        records = [[_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    if not records:
        raise InputFormatError(f"{filename}: the sheet {sheet.title!r} is empty")
    columns = _header(records[0], filename)
    prompt_column = _find_prompt_column(columns, filename)
    rows = []
    for record in records[1:]:
        cells = (record + [""] * len(columns))[: len(columns)]
        if any(cell.strip() for cell in cells):
            rows.append(dict(zip(columns, cells, strict=True)))
    return InputTable(columns, prompt_column, rows, "xlsx", filename)


def _cell_text(value: object) -> str:
    """A cell as the literal text a user typed: formulas stay formulas, 3.0 reads 3, dates read ISO."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    text = getattr(value, "text", None)  # openpyxl's ArrayFormula keeps its formula in .text
    return text if isinstance(text, str) else str(value)


def _read_txt(data: bytes, filename: str) -> InputTable:
    text, encoding = decode_text(data)
    return _lines_table(text, "txt", filename, encoding)


def _lines_table(text: str, source_format: str, filename: str | None, encoding: str | None) -> InputTable:
    prompts = [line for line in _LINE_BREAK.split(text) if line.strip()]
    rows = [{PROMPT_COLUMN: prompt} for prompt in prompts]
    return InputTable([PROMPT_COLUMN], PROMPT_COLUMN, rows, source_format, filename, encoding)


def _read_json(data: bytes, filename: str, *, lines: bool) -> InputTable:
    text, encoding = decode_text(data)
    items: object
    if lines:
        items = []
        for number, line in enumerate(_LINE_BREAK.split(text), start=1):
            if line.strip():
                items.append(_parse_json(line, filename, number))
    else:
        items = _parse_json(text, filename, 0)
    if isinstance(items, dict) and isinstance(items.get("prompts"), list):
        items = items["prompts"]
    if not isinstance(items, list):
        raise InputFormatError(f"{filename}: expected a list of prompts, got {type(items).__name__}")

    columns: list[str] = []
    for item in items:
        keys = [PROMPT_COLUMN] if isinstance(item, str) else list(item) if isinstance(item, dict) else []
        columns.extend(key for key in keys if key not in columns)
    prompt_column = _find_prompt_column(columns, filename) if columns else PROMPT_COLUMN
    rows = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, str):
            item = {prompt_column: item}
        if not isinstance(item, dict):
            kind = type(item).__name__
            raise InputFormatError(f"{filename}: item {number} is {kind}, not a string or an object")
        if prompt_column not in item:
            raise InputFormatError(f"{filename}: item {number} has no {prompt_column!r} field")
        rows.append({name: _json_text(item.get(name)) for name in columns})
    fmt = "jsonl" if lines else "json"
    return InputTable(columns or [PROMPT_COLUMN], prompt_column, rows, fmt, filename, encoding)


def _parse_json(text: str, filename: str, line: int) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = line or exc.lineno
        raise InputFormatError(f"{filename}: invalid JSON at line {where}: {exc.msg}") from exc


def _json_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
