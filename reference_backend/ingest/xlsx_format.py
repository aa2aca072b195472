"""XLSX to a ``ParsedTable``: zip-bomb and DTD checks first, then openpyxl in read-only mode over defusedxml.

- Guards before any XML is parsed: at most 10,000 zip entries, at most 100 MiB declared uncompressed in
  total, no entry over 1 MiB compressed more than 100:1, and no ``<!DOCTYPE``/``<!ENTITY`` in any XML part
  (``unsafe_xlsx``). openpyxl itself parses through defusedxml, which refuses entities (also ``unsafe_xlsx``).
- Bytes that are not a zip, a truncated zip, or a zip without a workbook are ``corrupt_xlsx``; so is an OLE
  file (an old .xls or a password-protected workbook) named .xlsx. Other known binary types (a PNG named
  .xlsx) are refused earlier with 415 by ``parse_upload``.
- The sheet named "prompts" (any case) is read, else the first worksheet. The header is the first row with
  a value; columns without a header and without values are dropped, empty rows skipped.
- Cells are text: formulas as written (``=SUM(A1:A2)``), strings literally (``NA``, ``null``), integers
  without ``.0``, other numbers in their shortest exact form, dates and times as ISO 8601, booleans as
  ``TRUE``/``FALSE``.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

import defusedxml
import openpyxl
from openpyxl.worksheet.formula import ArrayFormula

from ..errors import InvalidContent
from .limits import IngestLimits
from .table import ParsedTable, RawRecord, build_table, invalid

logger = logging.getLogger(__name__)

if not openpyxl.DEFUSEDXML:  # pragma: no cover - only when OPENPYXL_DEFUSEDXML=False is set
    raise ImportError("openpyxl must parse XML through defusedxml; unset OPENPYXL_DEFUSEDXML")

MAX_ENTRIES = 10_000
MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024
MAX_RATIO = 100
RATIO_CHECKED_ABOVE_BYTES = 1024 * 1024
PROMPTS_SHEET = "prompts"
_XML_SUFFIXES = (".xml", ".rels", ".vml")
_FORBIDDEN_MARKUP = (b"<!DOCTYPE", b"<!ENTITY")
_CHUNK = 1024 * 1024
_LARGEST_EXACT_FLOAT_INT = 2**53


def parse_xlsx(data: bytes, limits: IngestLimits) -> ParsedTable:
    with _open_zip(data) as archive:
        check_archive(archive)
    header, header_row, records = _read_rows(data)
    return build_table(
        header,
        records,
        source_format="xlsx",
        limits=limits,
        header_where=("sheet_row", header_row) if header_row else None,
    )


def check_archive(archive: zipfile.ZipFile) -> None:
    """Refuse a zip bomb or XML with a DTD before openpyxl opens anything."""
    entries = archive.infolist()
    if len(entries) > MAX_ENTRIES:
        raise _unsafe(f"The workbook holds {len(entries):,} files; the limit is {MAX_ENTRIES:,}.")
    declared = sum(entry.file_size for entry in entries)
    if declared > MAX_UNCOMPRESSED_BYTES:
        raise _unsafe(f"The workbook would unpack to {declared:,} bytes; the limit is {MAX_UNCOMPRESSED_BYTES:,}.")
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > RATIO_CHECKED_ABOVE_BYTES and ratio > MAX_RATIO:
            raise _unsafe(
                f'The part "{entry.filename}" of the workbook is compressed {ratio:,.0f} to 1; '
                f"the limit is {MAX_RATIO} to 1."
            )
    if "xl/workbook.xml" not in archive.namelist():
        raise _corrupt("The file is a zip archive but not an Excel workbook (it has no xl/workbook.xml).")
    for entry in entries:
        if entry.filename.lower().endswith(_XML_SUFFIXES) and _has_forbidden_markup(archive, entry):
            raise _unsafe(
                f'The part "{entry.filename}" of the workbook declares a DTD or XML entities, which '
                "spreadsheets never need."
            )


def _has_forbidden_markup(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> bool:
    overlap = max(len(marker) for marker in _FORBIDDEN_MARKUP) - 1
    tail = b""
    try:
        with archive.open(entry) as stream:
            while chunk := stream.read(_CHUNK):
                window = tail + chunk
                if any(marker in window for marker in _FORBIDDEN_MARKUP):
                    return True
                tail = window[-overlap:]
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        # RuntimeError: an encrypted entry; NotImplementedError: an unknown compression method.
        raise _corrupt(f'The part "{entry.filename}" of the workbook cannot be unpacked.') from exc
    return False


def _open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _corrupt("The file is not a valid .xlsx workbook: it is not a complete zip archive.") from exc


def _read_rows(data: bytes) -> tuple[list[str], int, list[RawRecord]]:
    try:
        # Workbooks without styles make openpyxl warn; the warning says nothing the user can act on.
        # catch_warnings is process-wide, so a concurrent request may briefly see this filter too.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
            try:
                rows = list(_sheet_rows(workbook))
            finally:
                workbook.close()
    except InvalidContent:
        raise
    except Exception as exc:
        # openpyxl reports malformed parts with whatever its parser raised (KeyError, ParseError, ...),
        # sometimes wrapped in a ValueError; defusedxml's refusal may sit anywhere in that chain.
        if _in_chain(exc, defusedxml.DefusedXmlException):
            raise _unsafe("The workbook's XML declares entities, which spreadsheets never need.") from exc
        logger.info("unreadable xlsx: %r", exc)
        raise _corrupt("The .xlsx workbook is damaged and could not be read.") from exc

    header: list[str] = []
    header_row = 0
    records: list[RawRecord] = []
    for number, cells in rows:
        if not header_row:
            if cells:
                header, header_row = cells, number
            continue
        records.append(RawRecord(cells, ("sheet_row", number)))
    width = max([len(header), *(len(record.cells) for record in records)])
    return header + [""] * (width - len(header)), header_row, records


def _sheet_rows(workbook: Any) -> Iterator[tuple[int, list[str]]]:
    sheets = [sheet for sheet in workbook.worksheets if hasattr(sheet, "iter_rows")]
    if not sheets:
        raise _corrupt("The workbook has no worksheet.")
    sheet = next((s for s in sheets if s.title.strip().casefold() == PROMPTS_SHEET), sheets[0])
    # A wrong <dimension> in the sheet XML would otherwise cut rows short.
    sheet.reset_dimensions()
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        cells = [render_cell(value) for value in values]
        while cells and cells[-1] == "":
            cells.pop()
        yield number, cells


def _in_chain(exc: BaseException | None, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def render_cell(value: Any) -> str:
    """A cell's value as the text a user typed or sees."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _LARGEST_EXACT_FLOAT_INT:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, ArrayFormula):
        return value.text or ""
    return str(value)


def _unsafe(message: str) -> InvalidContent:
    return invalid("unsafe_xlsx", message + " The file was not opened.")


def _corrupt(message: str) -> InvalidContent:
    return invalid("corrupt_xlsx", message + ' Open it in Excel and save it again as "Excel Workbook (.xlsx)".')
