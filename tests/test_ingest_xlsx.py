"""XLSX ingest: cell rendering, sheet and header choice, and the entity, zip-bomb and corruption guards."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Callable, Iterable
from typing import Any

import openpyxl
import pytest

from reference_backend.errors import InvalidContent, UnsupportedMediaType
from reference_backend.ingest import IngestLimits, ParsedTable, parse_upload, xlsx_format

pytestmark = pytest.mark.area("Ingest")

LIMITS = IngestLimits()


def _workbook(rows: Iterable[Iterable[Any]], *, title: str = "Sheet1", extra: dict[str, list] | None = None) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(list(row))
    for name, more in (extra or {}).items():
        other = workbook.create_sheet(name)
        for row in more:
            other.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _rewrite(data: bytes, part: str, change: Callable[[bytes], bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            content = source.read(entry)
            target.writestr(entry.filename, change(content) if entry.filename == part else content)
    return buffer.getvalue()


def _parse(data: bytes) -> ParsedTable:
    return parse_upload("prompts.xlsx", data, LIMITS)


def _error(data: bytes) -> InvalidContent:
    with pytest.raises(InvalidContent) as caught:
        _parse(data)
    return caught.value


def test_cells_render_as_the_text_a_user_sees() -> None:
    data = _workbook(
        [
            ["prompt", "int", "float", "whole_float", "date", "datetime", "bool", "formula", "empty"],
            [
                "Hi",
                42,
                2.5,
                3.0,
                dt.date(2024, 1, 15),
                dt.datetime(2024, 1, 15, 10, 30),
                True,
                "=SUM(B2:C2)",
                None,
            ],
        ]
    )
    table = _parse(data)
    assert table.source_format == "xlsx"
    assert table.rows == [
        {
            "prompt": "Hi",
            "int": "42",
            "float": "2.5",
            "whole_float": "3",
            "date": "2024-01-15",
            "datetime": "2024-01-15T10:30:00",
            "bool": "TRUE",
            "formula": "=SUM(B2:C2)",
            "empty": "",
        }
    ]


@pytest.mark.parametrize("literal", ["NA", "None", "null", "N/A", "#N/A", "nan", "=1+1"])
def test_na_like_strings_and_formula_prompts_stay_literal(literal: str) -> None:
    table = _parse(_workbook([["prompt", "act"], [literal, literal]]))
    assert table.rows == [{"prompt": literal, "act": literal}]


def test_unicode_prompts_come_through_exactly() -> None:
    prompts = ["用中文写诗", "اكتب قصيدة", "👨‍👩‍👧‍👦 family", "Cafe\u0301", 'He said "hi", ok; <b>x</b>']
    table = _parse(_workbook([["prompt"], *([p] for p in prompts)]))
    assert [row["prompt"] for row in table.rows] == prompts


def test_sheet_named_prompts_wins_over_the_first_sheet() -> None:
    data = _workbook([["notes"], ["not this"]], extra={"Prompts": [["prompt"], ["from the prompts sheet"]]})
    assert _parse(data).rows == [{"prompt": "from the prompts sheet"}]


def test_header_is_the_first_non_empty_row_and_trailing_blanks_are_ignored() -> None:
    data = _workbook(
        [
            [],
            [None, None],
            ["act", "prompt", None, None],
            ["A", "first", None, None],
            [None, None, None, None],
            ["B", "second"],
            [],
            [None, None, None],
        ]
    )
    table = _parse(data)
    assert table.columns == ["act", "prompt"]
    assert table.rows == [{"act": "A", "prompt": "first"}, {"act": "B", "prompt": "second"}]


def test_failed_rows_name_the_row_and_the_sheet_row() -> None:
    table = _parse(_workbook([[None], [], ["prompt", "act"], ["ok", "a"], ["", "b"]]))
    assert table.failures[2].code == "empty_prompt"
    assert table.failures[2].message.startswith("Row 2 (sheet row 5)")
    long_prompt = _workbook([["prompt"], ["ok"], ["x" * 32_001]])
    assert _parse(long_prompt).failures == {}
    limited = parse_upload("p.xlsx", long_prompt, IngestLimits(max_prompt_chars=32_000))
    assert limited.failures[2].code == "prompt_too_long"
    assert limited.failures[2].message.startswith("Row 2 (sheet row 3)")


@pytest.mark.parametrize(("count", "accepted"), [(1000, True), (1001, False)], ids=["1000-ok", "1001-refused"])
def test_prompt_count_boundary(count: int, accepted: bool) -> None:
    data = _workbook([["prompt"], *([f"p{n}"] for n in range(count))])
    if accepted:
        assert len(_parse(data).rows) == 1000
        return
    error = _error(data)
    assert (error.code, error.details["limit"], error.details["actual"]) == ("too_many_prompts", 1000, 1001)


def test_reserved_and_missing_columns_are_refused() -> None:
    assert _error(_workbook([["prompt", "Row_Status"], ["x", "y"]])).code == "reserved_column"
    missing = _error(_workbook([["text", 2024], ["x", "y"]]))
    assert (missing.code, missing.details["columns"]) == ("missing_prompt_column", ["text", "2024"])


ENTITY_SHEET = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<!DOCTYPE worksheet [<!ENTITY boom "BOOMBOOMBOOMBOOM"><!ENTITY b2 "&boom;&boom;&boom;&boom;">]>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row>'
    b'<row r="2"><c r="A2" t="inlineStr"><is><t>&b2;</t></is></c></row>'
    b"</sheetData></worksheet>"
)


def test_xml_entities_in_a_sheet_are_unsafe_xlsx() -> None:
    data = _rewrite(_workbook([["prompt"], ["x"]]), "xl/worksheets/sheet1.xml", lambda _: ENTITY_SHEET)
    error = _error(data)
    assert error.code == "unsafe_xlsx"
    assert error.details["filename"] == "prompts.xlsx"
    assert "BOOM" not in error.message


def test_defusedxml_refuses_entities_even_without_the_markup_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsx_format, "_declares_dtd", lambda window: False)
    data = _rewrite(_workbook([["prompt"], ["x"]]), "xl/worksheets/sheet1.xml", lambda _: ENTITY_SHEET)
    assert _error(data).code == "unsafe_xlsx"


def test_highly_compressed_entry_is_a_zip_bomb() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("xl/workbook.xml", b"<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", bytes(50 * 1024 * 1024))
    error = _error(buffer.getvalue())
    assert error.code == "unsafe_xlsx"
    assert "compressed" in error.message


@pytest.mark.parametrize(
    ("limit", "value"),
    [("MAX_ENTRIES", 5), ("MAX_UNCOMPRESSED_BYTES", 1000)],
    ids=["too-many-entries", "too-large-uncompressed"],
)
def test_zip_entry_and_size_limits(monkeypatch: pytest.MonkeyPatch, limit: str, value: int) -> None:
    monkeypatch.setattr(xlsx_format, limit, value)
    error = _error(_workbook([["prompt"], ["x" * 2000]]))
    assert error.code == "unsafe_xlsx"


def _zip_without_workbook() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "make",
    [
        lambda: b"this is plain text, not a workbook",
        lambda: _workbook([["prompt"], ["x"]])[:700],
        _zip_without_workbook,
        lambda: _rewrite(_workbook([["prompt"], ["x"]]), "xl/workbook.xml", lambda _: b"<workbook><broken"),
        lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
    ],
    ids=["not-a-zip", "truncated", "zip-without-workbook", "broken-xml", "ole-xls-or-encrypted"],
)
def test_damaged_workbooks_are_corrupt_xlsx(make: Callable[[], bytes]) -> None:
    error = _error(make())
    assert error.code == "corrupt_xlsx"
    assert error.details["filename"] == "prompts.xlsx"


def test_png_named_xlsx_is_unsupported_media_type() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        _parse(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert caught.value.status == 415
    assert caught.value.details["detected"] == "a PNG image"
