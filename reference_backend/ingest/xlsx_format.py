"""XLSX to a ``ParsedTable``: zip-bomb and DTD checks first, then openpyxl in read-only mode over defusedxml.

- Guards before any XML is parsed: at most 10,000 zip entries, no two with one name and none whose name
  climbs out of the archive (``../``, ``/etc``, ``C:``), at most 100 MiB declared uncompressed in total, no
  entry over 1 MiB compressed more than 100:1, and no ``<!DOCTYPE``/``<!ENTITY`` in any XML part
  (``unsafe_xlsx``). openpyxl itself parses through defusedxml, which refuses entities (also ``unsafe_xlsx``).
- Element budgets, counted in the same pass, because parsing costs microseconds per element: a worksheet
  or shared-string table may hold at most ``max_cells`` cells or strings (``too_many_values``) and
  ``4 * max_cells`` elements, a part of any other kind (styles, theme, workbook) ``OTHER_PART_ELEMENTS``
  elements (``unsafe_xlsx``). A part's kind is its root element, not its name.
- The sheet is read sparsely (openpyxl's own worksheet parser, below ``iter_rows``): a cell in column XFD or
  row 1,048,576 costs one cell, where ``iter_rows`` would build every empty row and column before it. A
  value beyond column ``max_columns`` is ``too_many_columns``.
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
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import defusedxml
import openpyxl
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.worksheet.formula import ArrayFormula

from ..errors import InvalidContent
from .limits import IngestLimits
from .table import ParsedTable, RawRecord, build_table, check_width, invalid, too_many_records

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
OTHER_PART_ELEMENTS = 50_000
_CHUNK = 1024 * 1024
_LARGEST_EXACT_FLOAT_INT = 2**53
# The root element of a part, after the XML declaration and any comments: what decides its budget.
_ROOT = re.compile(rb"<(?![?!])(?:[\w.-]+:)?([\w.-]+)")
_COMMENT = re.compile(rb"<!--.*?-->", re.DOTALL)
_ENCODING = re.compile(rb"(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)")
_CELL_TAGS = (b"<c ", b"<c>", b"<c/", b":c ", b":c>", b":c/")
_STRING_TAGS = (b"<si>", b"<si ", b":si>", b":si ")
_NOT_ELEMENTS = (b"</", b"<?", b"<!")
_UNSAFE_NAME = re.compile(r"(^|[/\\])\.\.([/\\]|$)|^[/\\]|^[A-Za-z]:")


@dataclass
class _PartCount:
    """What one XML part holds; off by a few where a tag straddles two read chunks."""

    root: bytes = b""
    elements: int = 0
    members: int = 0  # cells of a worksheet, strings of a shared-string table


def parse_xlsx(data: bytes, limits: IngestLimits) -> ParsedTable:
    with _open_zip(data) as archive:
        check_archive(archive, limits)
    header, header_row, records = _read_rows(data, limits)
    return build_table(
        header,
        records,
        source_format="xlsx",
        limits=limits,
        header_where=("sheet_row", header_row) if header_row else None,
    )


def check_archive(archive: zipfile.ZipFile, limits: IngestLimits) -> None:
    """Refuse a zip bomb, unsafe names, XML with a DTD or an element bomb before openpyxl opens anything."""
    entries = archive.infolist()
    if len(entries) > MAX_ENTRIES:
        raise _unsafe(f"The workbook holds {len(entries):,} files; the limit is {MAX_ENTRIES:,}.")
    names: set[str] = set()
    for entry in entries:
        if _UNSAFE_NAME.search(entry.filename):
            raise _unsafe(f'The workbook holds a file named "{entry.filename}", a path outside the archive.')
        if entry.filename in names:
            raise _unsafe(f'The workbook holds two files named "{entry.filename}".')
        names.add(entry.filename)
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
    if "xl/workbook.xml" not in names:
        raise _corrupt("The file is a zip archive but not an Excel workbook (it has no xl/workbook.xml).")
    for entry in entries:
        if entry.filename.lower().endswith(_XML_SUFFIXES):
            _check_budget(entry.filename, _scan_part(archive, entry), limits)


def _scan_part(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> _PartCount:
    """Count one part's elements while looking for DTD markup, in one streamed pass."""
    overlap = max(len(marker) for marker in _FORBIDDEN_MARKUP) - 1
    tail = b""
    count = _PartCount()
    try:
        with archive.open(entry) as stream:
            while chunk := stream.read(_CHUNK):
                window = tail + chunk
                if _declares_dtd(window):
                    raise _unsafe(
                        f'The part "{entry.filename}" of the workbook declares a DTD or XML entities, which '
                        "spreadsheets never need."
                    )
                if not tail and (b"\x00" in chunk or _foreign_encoding(chunk)):
                    # These checks read UTF-8 bytes; a UTF-16 or EBCDIC part would slip past them all.
                    raise _unsafe(f'The part "{entry.filename}" of the workbook is not UTF-8 XML.')
                if not count.root and (found := _ROOT.search(_COMMENT.sub(b"", window))):
                    count.root = found.group(1)
                count.elements += chunk.count(b"<") - sum(chunk.count(tag) for tag in _NOT_ELEMENTS)
                tags = _CELL_TAGS if count.root == b"worksheet" else _STRING_TAGS if count.root == b"sst" else ()
                count.members += sum(chunk.count(tag) for tag in tags)
                tail = window[-overlap:]
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        # RuntimeError: an encrypted entry; NotImplementedError: an unknown compression method.
        raise _corrupt(f'The part "{entry.filename}" of the workbook cannot be unpacked.') from exc
    return count


def _foreign_encoding(head: bytes) -> bool:
    declared = _ENCODING.match(head)
    return declared is not None and declared.group(1).lower().replace(b"-", b"").replace(b"_", b"") != b"utf8"


def _declares_dtd(window: bytes) -> bool:
    return any(marker in window for marker in _FORBIDDEN_MARKUP)


def _check_budget(name: str, count: _PartCount, limits: IngestLimits) -> None:
    if count.root in (b"worksheet", b"sst"):
        what = "cells" if count.root == b"worksheet" else "distinct texts"
        if count.members > limits.max_cells:
            raise invalid(
                "too_many_values",
                f'The part "{name}" of the workbook holds about {count.members:,} {what}; the limit is '
                f"{limits.max_cells:,} ({limits.max_prompts:,} prompts under a header, at most "
                f"{limits.max_columns:,} columns). Copy the prompts into a new workbook and upload that.",
                part=name,
                limit=limits.max_cells,
                actual=count.members,
            )
        budget = 4 * limits.max_cells
    else:
        budget = OTHER_PART_ELEMENTS
    if count.elements > budget:
        raise _unsafe(
            f'The part "{name}" of the workbook holds about {count.elements:,} XML elements; the limit for a '
            f"part of its kind is {budget:,}."
        )


def _open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _corrupt("The file is not a valid .xlsx workbook: it is not a complete zip archive.") from exc


def _read_rows(data: bytes, limits: IngestLimits) -> tuple[list[str], int, list[RawRecord]]:
    try:
        # Workbooks without styles make openpyxl warn; the warning says nothing the user can act on.
        # catch_warnings is process-wide, so a concurrent request may briefly see this filter too.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
            try:
                rows = list(_sheet_rows(workbook, limits))
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
            header, header_row = cells, number
            continue
        records.append(RawRecord(cells, ("sheet_row", number)))
    return header, header_row, records


def _sheet_rows(workbook: Any, limits: IngestLimits) -> Iterator[tuple[int, list[str]]]:
    """Each row that holds a value, as text up to its last value, with its own row number."""
    sheets = [sheet for sheet in workbook.worksheets if hasattr(sheet, "iter_rows")]
    if not sheets:
        raise _corrupt("The workbook has no worksheet.")
    sheet = next((s for s in sheets if s.title.strip().casefold() == PROMPTS_SHEET), sheets[0])
    # ReadOnlyWorksheet's own parser set-up (openpyxl is pinned): it yields only the cells the XML holds,
    # and ignores the sheet's <dimension>, which may be wrong.
    with sheet._get_source() as source:
        parser = WorkSheetParser(
            source,
            sheet._shared_strings,
            data_only=False,
            epoch=workbook.epoch,
            date_formats=workbook._date_formats,
            timedelta_formats=workbook._timedelta_formats,
        )
        for read, (number, cells) in enumerate(parser.parse(), start=1):
            if read > limits.max_records_read:
                raise too_many_records(limits)
            values: dict[int, str] = {}
            for cell in cells:
                text = render_cell(cell["value"])
                if text:
                    values[check_width(cell["column"], limits)] = text
                else:
                    values.pop(cell["column"], None)
            if values:
                row = [""] * max(values)
                for column, text in values.items():
                    row[column - 1] = text
                yield number, row


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
