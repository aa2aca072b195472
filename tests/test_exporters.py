"""Download exports: CSV injection defused, exact unicode round trips, ZIP manifest, safe file names."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_backend.exporters import (
    CHUNK_BYTES,
    ExportMeta,
    ExportRow,
    content_disposition,
    download_filename,
    iter_csv,
    iter_json,
    neutralise_cell,
    write_zip,
)
from reference_backend.http_delivery import compress

pytestmark = pytest.mark.area("Downloads")

COLUMNS = ["prompt", "category", "tags"]
DANGEROUS_LEADS = ["=", "+", "-", "@", "\t", "\r"]
HARD_UNICODE = [
    "日本語のプロンプト",
    "مرحبا بالعالم \u202bRTL\u202c",
    "family 👩‍👩‍👧‍👦 and flag 🏳️‍🌈",
    "combining e\u0301 a\u0308 ﬁ",
    'line one\nline two\r\nline "three", with comma',
    "tab\tinside and trailing space ",
    '{"json": "in a cell"}',
    "back\\slash and 'single' quotes",
    "",
]
BATCH_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def meta_for(rows: list[ExportRow], columns: list[str] = COLUMNS) -> ExportMeta:
    succeeded = sum(row.status == "succeeded" for row in rows)
    failed = sum(row.status == "failed" for row in rows)
    status = "completed_with_errors" if failed else "completed"
    return ExportMeta(BATCH_ID, status, len(rows), succeeded, failed, columns)


def succeeded_row(row_number: int, prompt: str, **fields: str) -> ExportRow:
    return ExportRow(
        row_number=row_number,
        fields={"prompt": prompt, "category": "", "tags": "", **fields},
        enhanced_prompt=f"You are an expert.\n\n{prompt}",
        techniques=("role", "output_format"),
        status="succeeded",
        error=None,
    )


def failed_row(row_number: int, prompt: str, error: str) -> ExportRow:
    return ExportRow(row_number, {"prompt": prompt, "category": "x", "tags": ""}, None, (), "failed", error)


def csv_records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def csv_bytes(meta: ExportMeta, rows: list[ExportRow]) -> bytes:
    return b"".join(iter_csv(meta, rows))


def json_document(meta: ExportMeta, rows: list[ExportRow]) -> dict[str, object]:
    return json.loads(b"".join(iter_json(meta, rows)).decode("utf-8"))


@pytest.mark.parametrize("lead", DANGEROUS_LEADS, ids=repr)
def test_neutralise_cell_prefixes_a_formula_lead(lead: str) -> None:
    assert neutralise_cell(f"{lead}1+1") == f"'{lead}1+1"


@pytest.mark.parametrize("value", ["", "plain", "a=b", "1-2", "'=already", " =spaced", "\n=newline"])
def test_neutralise_cell_leaves_safe_text_alone(value: str) -> None:
    assert neutralise_cell(value) == value


@pytest.mark.parametrize("lead", DANGEROUS_LEADS, ids=repr)
def test_csv_neutralises_every_column_including_original_fields_and_header(lead: str) -> None:
    payload = f'{lead}HYPERLINK("http://evil")'
    row = ExportRow(
        row_number=1,
        fields={f"{lead}col": payload, "category": payload},
        enhanced_prompt=payload,
        techniques=(payload,),
        status="failed",
        error=payload,
    )
    header, record = csv_records(csv_bytes(meta_for([row], [f"{lead}col", "category"]), [row]))
    assert header == [
        "row_number",
        f"'{lead}col",
        "category",
        "enhanced_prompt",
        "techniques",
        "row_status",
        "row_error",
    ]
    assert record == [
        "1",
        f"'{payload}",
        f"'{payload}",
        f"'{payload}",
        f"'{payload}",
        "failed",
        f"'{payload}",
    ]


def test_csv_is_utf8_with_bom_crlf_and_the_contract_columns() -> None:
    row = ExportRow(
        2,
        {"prompt": "hi", "category": "c", "tags": "a,b"},
        "Better hi",
        ("role", "context"),
        "succeeded",
        None,
    )
    assert csv_bytes(meta_for([row]), [row]) == (
        b"\xef\xbb\xbfrow_number,prompt,category,tags,enhanced_prompt,techniques,row_status,row_error\r\n"
        b'2,hi,c,"a,b",Better hi,role; context,succeeded,\r\n'
    )


def test_csv_parses_back_to_the_same_rows() -> None:
    rows = [succeeded_row(index + 1, text, tags=text) for index, text in enumerate(HARD_UNICODE)]
    rows.append(failed_row(len(rows) + 1, "!!!", "the prompt has no words to enhance"))
    header, *records = csv_records(csv_bytes(meta_for(rows), rows))
    assert header == ["row_number", *COLUMNS, "enhanced_prompt", "techniques", "row_status", "row_error"]
    expected = [
        [
            str(row.row_number),
            *(row.fields[column] for column in COLUMNS),
            row.enhanced_prompt or "",
            "; ".join(row.techniques),
            row.status,
            row.error or "",
        ]
        for row in rows
    ]
    assert records == expected


def test_csv_fills_a_missing_field_with_an_empty_cell() -> None:
    row = ExportRow(1, {"prompt": "only the prompt"}, None, (), "pending", None)
    _, record = csv_records(csv_bytes(meta_for([row]), [row]))
    assert record == ["1", "only the prompt", "", "", "", "", "pending", ""]


def test_csv_of_no_rows_is_the_header_alone() -> None:
    assert csv_records(csv_bytes(meta_for([]), [])) == [
        ["row_number", *COLUMNS, "enhanced_prompt", "techniques", "row_status", "row_error"]
    ]


def test_csv_streams_in_chunks_of_about_64_kib() -> None:
    rows = [succeeded_row(number, "x" * 2000) for number in range(1, 201)]
    chunks = list(iter_csv(meta_for(rows), rows))
    assert len(chunks) > 4
    assert all(len(chunk) < CHUNK_BYTES + 10_000 for chunk in chunks)
    assert len(csv_records(b"".join(chunks))) == 201


def test_json_is_the_contract_document_with_exact_unicode() -> None:
    rows = [succeeded_row(index + 1, text, category=text) for index, text in enumerate(HARD_UNICODE)]
    rows.append(failed_row(len(rows) + 1, "=1+1", "simulated provider failure (failure rate 0.3)"))
    assert json_document(meta_for(rows), rows) == {
        "batch_id": BATCH_ID,
        "status": "completed_with_errors",
        "total": len(rows),
        "columns": COLUMNS,
        "rows": [
            {
                "row_number": row.row_number,
                "fields": row.fields,
                "enhanced_prompt": row.enhanced_prompt,
                "techniques": list(row.techniques),
                "status": row.status,
                "error": row.error,
                "attempts": row.attempts,
            }
            for row in rows
        ],
    }


def test_json_writes_unicode_as_utf8_not_escapes() -> None:
    rows = [succeeded_row(1, "日本語 👩‍👩‍👧")]
    data = b"".join(iter_json(meta_for(rows), rows))
    assert "日本語 👩‍👩‍👧".encode() in data
    assert b"\\u" not in data


def test_json_of_no_rows_is_valid() -> None:
    assert json_document(meta_for([]), [])["rows"] == []


def test_json_streams_rows_lazily_in_chunks() -> None:
    consumed = 0

    def rows() -> Iterator[ExportRow]:
        nonlocal consumed
        for number in range(1, 301):
            consumed += 1
            yield succeeded_row(number, "y" * 1000)

    chunks = iter_json(meta_for([]), rows())
    first = next(chunks)
    assert consumed < 300
    rest = b"".join(chunks)
    assert consumed == 300
    assert len(json.loads(first + rest)["rows"]) == 300


def test_zip_holds_csv_json_and_a_matching_manifest() -> None:
    rows = [succeeded_row(1, "日本語"), failed_row(2, "@SUM(A1)", "the prompt has no words to enhance")]
    meta = meta_for(rows)
    calls = 0

    def source() -> Iterator[ExportRow]:
        nonlocal calls
        calls += 1
        return iter(rows)

    out = io.BytesIO()
    write_zip(meta, source, out)
    assert calls == 2
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["results.csv", "results.json", "manifest.json"]
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
        csv_data = archive.read("results.csv")
        json_data = archive.read("results.json")
        manifest = json.loads(archive.read("manifest.json"))
    assert csv_data == csv_bytes(meta, rows)
    assert json_data == b"".join(iter_json(meta, rows))
    assert manifest == {
        "batch_id": BATCH_ID,
        "status": "completed_with_errors",
        "total": 2,
        "succeeded": 1,
        "failed": 1,
        "files": [
            {"name": "results.csv", "bytes": len(csv_data), "sha256": hashlib.sha256(csv_data).hexdigest()},
            {
                "name": "results.json",
                "bytes": len(json_data),
                "sha256": hashlib.sha256(json_data).hexdigest(),
            },
        ],
    }


class WriteOnly(io.RawIOBase):
    """A pipe-like output: no seek, no tell."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk: bytes) -> int:  # type: ignore[override]
        self.data += chunk
        return len(chunk)


def test_zip_can_be_written_to_an_unseekable_stream() -> None:
    rows = [succeeded_row(number, "z" * 500) for number in range(1, 51)]
    out = WriteOnly()
    write_zip(meta_for(rows), lambda: iter(rows), out)
    with zipfile.ZipFile(io.BytesIO(bytes(out.data))) as archive:
        assert archive.testzip() is None
        assert len(json.loads(archive.read("results.json"))["rows"]) == 50


@pytest.mark.parametrize(
    ("original", "fmt", "expected"),
    [
        ("prompts.csv", "csv", "prompts-results.csv"),
        ("prompts.xlsx", "json", "prompts-results.json"),
        ("my prompts (final).txt", "zip", "my-prompts-final-results.zip"),
        ("café.csv", "csv", "cafe-results.csv"),
        ("../../etc/passwd", "csv", "passwd-results.csv"),
        ("C:\\Users\\me\\list.csv", "csv", "list-results.csv"),
        ('a"b.csv', "csv", "a-b-results.csv"),
        ("\r\nSet-Cookie: x", "csv", "Set-Cookie-x-results.csv"),
        ("名前.csv", "csv", "batch-0f1e2d3c-results.csv"),
        ("..csv", "json", "batch-0f1e2d3c-results.json"),
        (None, "zip", "batch-0f1e2d3c-results.zip"),
        ("", "csv", "batch-0f1e2d3c-results.csv"),
    ],
    ids=[
        "csv",
        "xlsx",
        "spaces",
        "accent",
        "traversal",
        "windows-path",
        "quote",
        "header-injection",
        "cjk",
        "dots",
        "none",
        "empty",
    ],
)
def test_download_filename_is_derived_and_sanitised(original: str | None, fmt: str, expected: str) -> None:
    assert download_filename(original, BATCH_ID, fmt) == expected


@given(original=st.text(max_size=200))
@settings(max_examples=300, deadline=None, database=None)
def test_download_filename_of_any_name_is_safe_ascii(original: str) -> None:
    name = download_filename(original, BATCH_ID, "csv")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*-results\.csv", name)


@pytest.mark.parametrize("fmt", ["", "c/sv", "csv\r\n", "ｃｓｖ"])
def test_download_filename_refuses_a_strange_format(fmt: str) -> None:
    with pytest.raises(ValueError):
        download_filename("a.csv", BATCH_ID, fmt)


def test_content_disposition_of_an_ascii_name() -> None:
    assert content_disposition("prompts-results.csv") == (
        "attachment; filename=\"prompts-results.csv\"; filename*=UTF-8''prompts-results.csv"
    )


def test_content_disposition_keeps_a_unicode_name_in_filename_star() -> None:
    assert content_disposition("名前-results.csv") == (
        "attachment; filename=\"results.csv\"; filename*=UTF-8''%E5%90%8D%E5%89%8D-results.csv"
    )


def test_content_disposition_defuses_header_injection_and_quotes() -> None:
    assert content_disposition('a"b\r\nSet-Cookie: x=1\\..\\/etc.csv') == (
        'attachment; filename="a-bSet-Cookie-x-1_..__etc.csv"; '
        "filename*=UTF-8''a%22bSet-Cookie%3A%20x%3D1_..__etc.csv"
    )


@given(filename=st.text(max_size=100))
@settings(max_examples=300, deadline=None, database=None)
def test_content_disposition_of_any_name_is_one_safe_header_line(filename: str) -> None:
    header = content_disposition(filename)
    assert header.isascii()
    assert header.isprintable()
    match = re.fullmatch(r'attachment; filename="([A-Za-z0-9._-]+)"; filename\*=UTF-8\'\'(\S*)', header)
    assert match is not None
    assert "/" not in unquote(match[2]) and "\\" not in unquote(match[2])


def test_a_zip_dated_by_its_batch_is_the_same_bytes_every_time_and_streams_compress_deterministically() -> None:
    rows = [succeeded_row(number, text) for number, text in enumerate(HARD_UNICODE, start=1)]
    meta = dataclasses.replace(meta_for(rows), zip_date=(2026, 12, 4, 12, 0, 0))
    archives = []
    for _ in range(2):
        buffer = io.BytesIO()
        write_zip(meta, lambda: iter(rows), buffer)
        archives.append(buffer.getvalue())
    assert archives[0] == archives[1]
    assert zipfile.ZipFile(io.BytesIO(archives[0])).getinfo("results.csv").date_time == (2026, 12, 4, 12, 0, 0)
    for coding in ("gzip", "br"):
        encoded = [b"".join(compress(iter_csv(meta, iter(rows)), coding)) for _ in range(2)]
        assert encoded[0] == encoded[1]
    packed = b"".join(compress(iter_json(meta, iter(rows)), "gzip"))
    assert gzip.decompress(packed) == b"".join(iter_json(meta, iter(rows)))
