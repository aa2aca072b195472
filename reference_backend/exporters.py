"""Streaming CSV, JSON and ZIP exports of a batch's rows, in the formats of docs/contract.md."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, BinaryIO
from urllib.parse import quote

from . import faults

RESERVED_COLUMNS = ("row_number", "enhanced_prompt", "techniques", "row_status", "row_error")
TECHNIQUE_SEPARATOR = "; "
CHUNK_BYTES = 64 * 1024

# OWASP CSV injection: a spreadsheet reads a cell starting with one of these as a formula.
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_FILENAME_STEM_MAX = 80
# Bytes allowed unescaped in an RFC 5987 ext-value (attr-char), besides letters and digits.
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"


@dataclass(frozen=True)
class ExportRow:
    row_number: int
    fields: dict[str, str]
    enhanced_prompt: str | None
    techniques: tuple[str, ...]
    status: str
    error: str | None
    attempts: int = 0  # how many times the row was sent to the provider (JSON only)


@dataclass(frozen=True)
class ExportMeta:
    batch_id: str
    status: str
    total: int
    succeeded: int
    failed: int
    columns: list[str]
    # The ZIP members' date (year, month, day, hour, minute, second); a finished batch passes its finish time,
    # so its ZIP is the same bytes on every request (a strong ETag, resumable ranges). ``None``: now.
    zip_date: tuple[int, int, int, int, int, int] | None = None


def neutralise_cell(value: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would run as a formula; JSON exports keep the exact text."""
    if faults.on("no_csv_neutralise"):
        return value
    return f"'{value}" if value.startswith(_FORMULA_LEADS) else value


def iter_csv(meta: ExportMeta, rows: Iterable[ExportRow]) -> Iterator[bytes]:
    """The CSV export: UTF-8 with BOM, CRLF, every cell neutralised, in chunks of about 64 KiB.

    The header is neutralised too: column names come from the uploaded file just like the cells.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    buffer.write("\ufeff")
    writer.writerow([neutralise_cell(name) for name in _csv_header(meta.columns)])
    for row in _served(meta, rows):
        writer.writerow([neutralise_cell(cell) for cell in _csv_cells(meta.columns, row)])
        if buffer.tell() >= CHUNK_BYTES:
            yield _encode(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield _encode(buffer.getvalue())


def iter_json(meta: ExportMeta, rows: Iterable[ExportRow]) -> Iterator[bytes]:
    """The JSON export, one row object per line, streamed without building the document whole."""
    buffer = io.StringIO()
    buffer.write(
        f'{{"batch_id": {_dumps(meta.batch_id)}, "status": {_dumps(meta.status)}, '
        f'"total": {meta.total}, "columns": {_dumps(meta.columns)}, "rows": ['
    )
    separator = "\n"
    for row in _served(meta, rows):
        buffer.write(separator)
        buffer.write(_dumps(_json_row(meta.columns, row)))
        separator = ",\n"
        if buffer.tell() >= CHUNK_BYTES:
            yield _encode(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
    buffer.write("\n]}\n")
    yield _encode(buffer.getvalue())


def write_zip(meta: ExportMeta, rows: Callable[[], Iterable[ExportRow]], out: BinaryIO) -> None:
    """Write ``results.csv``, ``results.json`` and ``manifest.json`` (sizes, SHA-256) to ``out``.

    ``rows`` is called once per file so the rows stream from their source twice instead of being held.
    ``out`` need not be seekable.
    """
    date_time = meta.zip_date or time.localtime()[:6]
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, export in (("results.csv", iter_csv), ("results.json", iter_json)):
            digest = hashlib.sha256()
            size = 0
            with archive.open(_zip_entry(name, date_time), mode="w") as member:
                for index, chunk in enumerate(export(meta, rows())):
                    member.write(chunk)
                    if index or not faults.on("bad_manifest_checksum"):
                        digest.update(chunk)
                    size += len(chunk)
            files.append({"name": name, "bytes": size, "sha256": digest.hexdigest()})
        manifest = {
            "batch_id": meta.batch_id,
            "status": meta.status,
            "total": meta.total,
            "succeeded": meta.succeeded,
            "failed": meta.failed,
            "files": files,
        }
        archive.writestr(_zip_entry("manifest.json", date_time), _encode(json.dumps(manifest, indent=2)))


def download_filename(original: str | None, batch_id: str, fmt: str) -> str:
    """``prompts.csv`` → ``prompts-results.csv``: ASCII letters, digits, ``.``, ``_`` and ``-`` only.

    Falls back to ``batch-<first 8 of id>-results.<fmt>`` when nothing usable is left of the name.
    """
    if not fmt.isascii() or not fmt.isalnum():
        raise ValueError(f"not a download format: {fmt!r}")
    stem = _safe_ascii(_stem(original or ""))[:_FILENAME_STEM_MAX].strip("._-")
    if not stem:
        stem = f"batch-{_safe_ascii(batch_id)[:8]}".rstrip("._-")
    return f"{stem}-results.{fmt.lower()}"


def content_disposition(filename: str) -> str:
    """An attachment header with an ASCII ``filename`` and the exact name in ``filename*`` (RFC 6266/5987)."""
    printable = "".join(char for char in filename if unicodedata.category(char)[0] != "C")
    printable = printable.replace("/", "_").replace("\\", "_")
    fallback = _safe_ascii(printable).strip("._-") or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(printable, safe=_ATTR_CHAR_SAFE)}"


def _served(meta: ExportMeta, rows: Iterable[ExportRow]) -> Iterator[ExportRow]:
    """The rows as exported: as stored, unless a fault of the fault switch garbles them on the way out."""
    if not (faults.on("swap_rows") or faults.on("drop_field") or faults.on("hide_errors")):
        yield from rows
        return
    held: ExportRow | None = None
    for row in rows:
        if faults.on("drop_field") and meta.columns:
            row = replace(row, fields={**row.fields, meta.columns[-1]: ""})
        if faults.on("hide_errors") and row.status == "failed":
            row = replace(row, status="succeeded", error=None)
        if faults.on("swap_rows") and row.row_number == 1:
            held = row
            continue
        yield row
        if held is not None:
            yield held
            held = None
    if held is not None:
        yield held


def _csv_header(columns: list[str]) -> list[str]:
    return ["row_number", *columns, "enhanced_prompt", "techniques", "row_status", "row_error"]


def _csv_cells(columns: list[str], row: ExportRow) -> list[str]:
    return [
        str(row.row_number),
        *(row.fields.get(column, "") for column in columns),
        row.enhanced_prompt or "",
        TECHNIQUE_SEPARATOR.join(row.techniques),
        row.status,
        row.error or "",
    ]


def _json_row(columns: list[str], row: ExportRow) -> dict[str, Any]:
    return {
        "row_number": row.row_number,
        "fields": {column: row.fields.get(column, "") for column in columns},
        "enhanced_prompt": row.enhanced_prompt,
        "techniques": list(row.techniques),
        "status": row.status,
        "error": row.error,
        "attempts": row.attempts,
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _encode(text: str) -> bytes:
    # A lone surrogate cannot be UTF-8; replacing it beats failing a download that is half sent.
    if faults.on("mangle_unicode"):
        text = text.encode("utf-8", errors="replace").decode("latin-1")
    return text.encode("utf-8", errors="replace")


def _zip_entry(name: str, date_time: tuple[int, ...]) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, date_time=date_time)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o644 << 16
    return entry


def _stem(name: str) -> str:
    """The last path component without its extension; ``\\`` counts as a separator too."""
    base = re.split(r"[/\\]", name)[-1]
    stem, dot, _ = base.rpartition(".")
    return stem if dot and stem else base


def _safe_ascii(text: str) -> str:
    """Accents dropped (é → e), other non-ASCII and unsafe characters collapsed into single dashes."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _UNSAFE_FILENAME_CHARS.sub("-", ascii_text)
