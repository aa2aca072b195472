"""Parse a batch download (CSV, JSON or ZIP per docs/contract.md) into rows, noting what cannot be parsed."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("csv", "json", "zip")
DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISER = "'"
TECHNIQUE_SEPARATOR = "; "
CSV_HEAD = ("row_number",)
CSV_TAIL = ("enhanced_prompt", "techniques", "row_status", "row_error")
RESERVED_COLUMNS = CSV_HEAD + CSV_TAIL
ZIP_MEMBERS = ("results.csv", "results.json", "manifest.json")

_BOM = b"\xef\xbb\xbf"
_BARE_LF = re.compile(r"(?<!\r)\n")
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)


@dataclass(frozen=True)
class DownloadRow:
    """One record of a download; CSV cells already stripped of the ``'`` neutralisation prefix."""

    row_number: int | None
    fields: dict[str, str]
    enhanced_prompt: str | None
    techniques: list[str]
    status: str
    error: str | None
    neutralised: frozenset[str] = frozenset()
    unneutralised: frozenset[str] = frozenset()

    def cell(self, name: str) -> str:
        """The text of a CSV column, original or reserved."""
        reserved = {
            "row_number": "" if self.row_number is None else str(self.row_number),
            "enhanced_prompt": self.enhanced_prompt or "",
            "techniques": TECHNIQUE_SEPARATOR.join(self.techniques),
            "row_status": self.status,
            "row_error": self.error or "",
        }
        return reserved[name] if name in reserved else self.fields.get(name, "")


@dataclass
class Download:
    """A parsed download; a ZIP keeps its members, manifest and parsed ``results.*`` in ``parts``."""

    format: str
    columns: list[str]
    rows: list[DownloadRow]
    batch_id: str | None = None
    status: str | None = None
    total: int | None = None
    parse_problems: list[str] = field(default_factory=list)
    parts: dict[str, Download] = field(default_factory=dict)
    members: dict[str, bytes] = field(default_factory=dict)
    member_names: list[str] = field(default_factory=list)
    manifest: object = None


def load_download(source: str | Path | bytes, fmt: str | None = None) -> Download:
    """Parse a download from a path or bytes; ``fmt`` defaults to the file's suffix, else its content."""
    name = None
    if isinstance(source, bytes):
        data = source
    else:
        data = Path(source).read_bytes()
        name = Path(source).name
    fmt = (fmt or _guess_format(data, name)).lower()
    parsers = {"csv": parse_csv, "json": parse_json, "zip": parse_zip}
    if fmt not in parsers:
        raise ValueError(f"unknown download format {fmt!r}, expected one of {FORMATS}")
    return parsers[fmt](data)


def _guess_format(data: bytes, name: str | None) -> str:
    suffix = Path(name).suffix.lower().lstrip(".") if name else ""
    if suffix in FORMATS:
        return suffix
    if data.startswith(b"PK\x03\x04"):
        return "zip"
    return "json" if data.removeprefix(_BOM).lstrip().startswith(b"{") else "csv"


def unneutralise(cell: str) -> tuple[str, bool, bool]:
    """``(value, was_neutralised, is_dangerous_unneutralised)`` for one CSV cell."""
    if cell.startswith(NEUTRALISER) and cell[1:].startswith(DANGEROUS_PREFIXES):
        return cell[1:], True, False
    return cell, False, cell.startswith(DANGEROUS_PREFIXES)


def parse_csv(data: bytes) -> Download:
    """Parse a CSV download: UTF-8 with BOM, CRLF, reserved columns around the original ones."""
    problems = []
    if not data.startswith(_BOM):
        problems.append("the CSV does not start with a UTF-8 BOM")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(f"the CSV is not valid UTF-8 (byte {exc.start})")
        text = data.decode("utf-8-sig", errors="replace")
    # Outside quotes every record ends in CRLF; a bare LF there means LF line endings.
    if any(_BARE_LF.search(part) for part in text.split('"')[::2]):
        problems.append("the CSV ends records with a bare LF, not CRLF")
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        return Download("csv", [], [], parse_problems=[*problems, f"the CSV cannot be parsed ({exc})"])
    if not records:
        return Download("csv", [], [], parse_problems=[*problems, "the CSV is empty"])

    header = []
    for cell in records[0]:
        value, _, dangerous = unneutralise(cell)
        if dangerous:
            problems.append(f'header: column name {cell!r} is not neutralised with a leading "\'"')
        header.append(value)
    missing = [name for name in RESERVED_COLUMNS if name not in header]
    if missing:
        problems.append(f"the CSV header lacks {missing}")
    elif header[:1] != list(CSV_HEAD) or header[-len(CSV_TAIL) :] != list(CSV_TAIL):
        problems.append(f"the CSV header is not row_number, the original columns, {', '.join(CSV_TAIL)}")
    if len(set(header)) != len(header):
        problems.append(f"the CSV header repeats a column: {header}")

    rows = []
    for position, record in enumerate(records[1:], start=1):
        if len(record) != len(header):
            problems.append(f"row {position}: {len(record)} cells, the header has {len(header)}")
        values, neutralised, dangerous = {}, set(), set()
        for name, cell in zip(header, record + [""] * (len(header) - len(record)), strict=False):
            values[name], was_neutralised, is_dangerous = unneutralise(cell)
            if was_neutralised:
                neutralised.add(name)
            if is_dangerous:
                dangerous.add(name)
        row_number = _int_or_none(values.get("row_number", ""))
        if row_number is None:
            problems.append(f"row {position}: row_number {values.get('row_number')!r} is not an integer")
        techniques = values.get("techniques", "")
        rows.append(
            DownloadRow(
                row_number=row_number,
                fields={name: value for name, value in values.items() if name not in RESERVED_COLUMNS},
                enhanced_prompt=values.get("enhanced_prompt") or None,
                techniques=techniques.split(TECHNIQUE_SEPARATOR) if techniques else [],
                status=values.get("row_status", ""),
                error=values.get("row_error") or None,
                neutralised=frozenset(neutralised),
                unneutralised=frozenset(dangerous),
            )
        )
    columns = [name for name in header if name not in RESERVED_COLUMNS]
    return Download("csv", columns, rows, parse_problems=problems)


def _int_or_none(text: str) -> int | None:
    return int(text) if re.fullmatch(r"[0-9]+", text) else None


def parse_json(data: bytes) -> Download:
    """Parse a JSON download: ``{batch_id, status, total, columns, rows: [...]}`` with exact text."""
    problems: list[str] = []
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Download("json", [], [], parse_problems=[f"the JSON cannot be parsed ({exc})"])
    if not isinstance(body, dict):
        return Download("json", [], [], parse_problems=["the JSON body is not an object"])
    missing = [key for key in ("batch_id", "status", "total", "columns", "rows") if key not in body]
    if missing:
        problems.append(f"the JSON body lacks {missing}")

    def typed(obj: dict, key: str, kinds: tuple[type, ...], where: str, default: object) -> object:
        value = obj.get(key, default)
        if value is not default and (not isinstance(value, kinds) or isinstance(value, bool)):
            problems.append(f"{where}{key!r} is {json.dumps(value)[:40]}, not {'/'.join(k.__name__ for k in kinds)}")
            return default
        return value

    columns = typed(body, "columns", (list,), "", [])
    if not all(isinstance(name, str) for name in columns):
        problems.append("'columns' holds a name that is not a string")
        columns = [str(name) for name in columns]
    rows = []
    for position, item in enumerate(typed(body, "rows", (list,), "", []), start=1):
        where = f"row {position}: "
        if not isinstance(item, dict):
            problems.append(f"{where}not an object")
            rows.append(DownloadRow(None, {}, None, [], "", None))
            continue
        absent = [
            k for k in ("row_number", "fields", "enhanced_prompt", "techniques", "status", "error") if k not in item
        ]
        if absent:
            problems.append(f"{where}lacks {absent}")
        fields = {}
        for name, value in typed(item, "fields", (dict,), where, {}).items():
            if not isinstance(value, str):
                problems.append(f"{where}field {name!r} is {json.dumps(value)[:40]}, not text")
            fields[name] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if set(fields) != set(columns):
            problems.append(f"{where}its fields {sorted(fields)} do not match 'columns' {sorted(columns)}")
        techniques = typed(item, "techniques", (list,), where, [])
        if not all(isinstance(t, str) for t in techniques):
            problems.append(f"{where}'techniques' holds a value that is not a string")
        row_number = typed(item, "row_number", (int,), where, None)
        if row_number is None and "row_number" in item:
            problems.append(f"{where}row_number is null")
        rows.append(
            DownloadRow(
                row_number=row_number,
                fields=fields,
                enhanced_prompt=typed(item, "enhanced_prompt", (str,), where, None),
                techniques=[str(t) for t in techniques],
                status=typed(item, "status", (str,), where, ""),
                error=typed(item, "error", (str,), where, None),
            )
        )
    return Download(
        "json",
        columns,
        rows,
        batch_id=typed(body, "batch_id", (str,), "", None),
        status=typed(body, "status", (str,), "", None),
        total=typed(body, "total", (int,), "", None),
        parse_problems=problems,
    )


def parse_zip(data: bytes) -> Download:
    """Parse a ZIP download: CRC check, members read, ``results.*`` parsed, manifest kept for validation."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        return Download("zip", [], [], parse_problems=[f"not a readable ZIP archive ({exc})"])
    problems = []
    members = {}
    with archive:
        names = archive.namelist()
        # testzip() only catches BadZipFile; a mangled deflate stream raises zlib.error through it.
        try:
            first_bad = archive.testzip()
        except _ZIP_ERRORS as exc:
            problems.append(f"the archive fails its integrity check (testzip: {exc})")
        else:
            if first_bad:
                problems.append(f"the archive fails its CRC check (testzip: {first_bad} has a bad CRC-32)")
        for name in names:
            try:
                members[name] = archive.read(name)
            except _ZIP_ERRORS as exc:
                problems.append(f"{name}: cannot be extracted intact ({exc})")
    problems += [f"{name} is missing from the archive" for name in ZIP_MEMBERS if name not in names]
    problems += [f"{name} is in the archive but not in the contract" for name in names if name not in ZIP_MEMBERS]

    parts = {}
    if "results.csv" in members:
        parts["results.csv"] = parse_csv(members["results.csv"])
    if "results.json" in members:
        parts["results.json"] = parse_json(members["results.json"])
    manifest = None
    if "manifest.json" in members:
        try:
            manifest = json.loads(members["manifest.json"].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"manifest.json cannot be parsed ({exc})")
    primary = primary_part(Download("zip", [], [], parts=parts))
    return Download(
        "zip",
        primary.columns,
        primary.rows,
        batch_id=primary.batch_id,
        status=primary.status,
        total=primary.total,
        parse_problems=problems,
        parts=parts,
        members=members,
        member_names=names,
        manifest=manifest,
    )


def primary_part(download: Download) -> Download:
    """A ZIP's ``results.json`` (exact text), or its ``results.csv`` when the JSON has no rows."""
    if download.format != "zip":
        return download
    as_json, as_csv = download.parts.get("results.json"), download.parts.get("results.csv")
    if as_json is not None and (as_json.rows or as_csv is None or not as_csv.rows):
        return as_json
    return as_csv or download
