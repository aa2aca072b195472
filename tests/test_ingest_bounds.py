"""The bounds that keep a hostile upload cheap: records read, value length, columns, values, XML parts.

Each bound is tested at small limits, so the files stay small; ``tests/test_adversarial_corpus.py`` sends
the full-size hostile files to a real server.
"""

from __future__ import annotations

import io
import json
import random
import re
import time
import zipfile

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_backend.errors import ApiError, InvalidContent, UnsupportedMediaType
from reference_backend.ingest import IngestLimits, ParsedTable, parse_upload
from reference_backend.ingest.encoding import LINE_BREAK, line_spans

pytestmark = pytest.mark.area("Ingest")

SMALL = IngestLimits(max_prompts=5, max_columns=4, max_value_chars=160, max_record_fields=160)


def _parse(name: str, data: bytes | str, limits: IngestLimits = SMALL) -> ParsedTable:
    return parse_upload(name, data.encode() if isinstance(data, str) else data, limits)


def _error(name: str, data: bytes | str, limits: IngestLimits = SMALL) -> ApiError:
    with pytest.raises(ApiError) as caught:
        _parse(name, data, limits)
    return caught.value


def test_default_limits_bound_a_value_only_by_the_file_size() -> None:
    limits = IngestLimits()
    assert limits.max_prompt_chars is None
    assert limits.max_value_chars == limits.max_bytes == 10 * 1024 * 1024
    assert (limits.max_record_fields, limits.max_records_read, limits.max_cells, limits.max_values) == (
        262_144,
        100_000,
        100_100,
        200_200,
    )


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("p.txt", "a\n" * 501),
        ("p.txt", "a\n" + "\n" * 600),
        ("p.csv", "prompt\n" + "a\n" * 600),
        ("p.csv", "prompt,x\n" + ",\n" * 600),
        ("p.jsonl", '"a"\n' * 501),
    ],
    ids=["txt-prompts", "txt-blank-lines", "csv-prompts", "csv-blank-records", "jsonl"],
)
def test_reading_stops_after_max_records_read(name: str, data: str) -> None:
    error = _error(name, data)
    assert error.code == "too_many_prompts"
    assert (error.details["limit"], error.details["rows_read"]) == (5, 500)
    assert "more than 500 rows" in error.message


def test_counts_under_the_reading_bound_stay_exact() -> None:
    error = _error("p.csv", "prompt\n" + "a\n" * 499)
    assert (error.code, error.details["actual"]) == ("too_many_prompts", 499)


def test_a_csv_value_over_max_value_chars_names_its_line() -> None:
    error = _error("p.csv", 'prompt,notes\nfine,ok\nx,"' + "y" * 200 + '"\n')
    assert error.code == "value_too_long"
    assert (error.details["line"], error.details["limit"]) == (3, 160)


def test_an_unclosed_quote_far_over_the_value_limit_is_refused_before_it_is_read_whole() -> None:
    error = _error("p.csv", 'prompt\n"never closed\n' + "more\n" * 100)
    assert (error.code, error.details["line"]) == ("value_too_long", 2)
    assert "closing quote" in error.message
    assert "actual" not in error.details  # the reader stopped: the value was never built


def test_a_long_value_outside_the_prompt_column_is_value_too_long_in_every_format() -> None:
    long = "n" * 161
    errors = [
        _error("p.csv", f"prompt,notes\nhi,{long}\n"),
        _error("p.json", json.dumps([{"prompt": "hi", "notes": long}])),
        _error("p.xlsx", _workbook([["prompt", "notes"], ["hi", long]])),
    ]
    assert [error.code for error in errors] == ["value_too_long"] * 3
    assert [error.details.get("column") for error in errors[1:]] == ["notes", "notes"]


def test_a_txt_line_over_the_value_limit_is_refused_with_its_length() -> None:
    error = _error("p.txt", "short\n" + "z" * 500 + "\n")
    assert (error.code, error.details["line"], error.details["actual"]) == ("value_too_long", 2, 500)


def test_prompts_over_a_provider_limit_below_the_value_limit_are_failed_rows() -> None:
    limits = IngestLimits(max_prompts=5, max_columns=4, max_value_chars=160, max_prompt_chars=20)
    table = _parse("p.txt", "fine\n" + "z" * 100, limits)
    assert [row["prompt"] for row in table.rows] == ["fine", "z" * 100]
    assert {row: failure.code for row, failure in table.failures.items()} == {2: "prompt_too_long"}


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("p.csv", "prompt,a,b,c,d\nhi,1,2,3,4\n"),
        ("p.csv", ",,,,prompt\n,,,,hi\n"),
        ("p.json", json.dumps([{"prompt": "hi", "a": 1, "b": 2, "c": 3, "d": 4}])),
    ],
    ids=["csv-header", "csv-blank-columns-first", "json-keys"],
)
def test_more_than_max_columns_is_too_many_columns(name: str, data: str) -> None:
    error = _error(name, data)
    assert (error.code, error.details["limit"], error.details["actual"]) == ("too_many_columns", 4, 5)


def test_trailing_empty_columns_do_not_count_against_max_columns() -> None:
    table = _parse("p.csv", "prompt,a,,,,,,,\nhi,1,,,,,,,\n")
    assert table.columns == ["prompt", "a"]


def test_a_record_with_more_delimiters_than_max_record_fields_is_refused_before_it_is_built() -> None:
    error = _error("p.csv", "prompt\n" + "ab," * 200 + "\n")
    assert (error.code, error.details["line"], error.details["limit"]) == ("too_many_columns", 2, 160)


def test_quoted_delimiters_inside_a_value_are_fine_below_that_bound() -> None:
    table = _parse("p.csv", 'prompt,notes\nhi,"' + "," * 150 + '"\n')
    assert table.rows[0]["notes"] == "," * 150


def test_a_record_spanning_more_than_max_record_lines_is_refused_without_reading_the_rest() -> None:
    limits = IngestLimits(max_record_lines=50)
    multi_line = "line\r\n" * 49 + "last"
    table = _parse("p.csv", f'prompt,notes\n"{multi_line}",x\n', limits)
    assert table.rows[0]["prompt"] == multi_line
    error = _error("p.csv", 'prompt,notes\n"never closed,x\n' + "more\n" * 10_000, limits)
    assert (error.code, error.details["line"], error.details["limit_lines"]) == ("value_too_long", 2, 50)
    assert "closing quote" in error.message


def test_trailing_whitespace_values_survive_the_width_trimming() -> None:
    table = _parse("p.csv", "prompt,a,b\nhi, , \n")
    assert table.rows == [{"prompt": "hi", "a": " ", "b": " "}]


def test_json_over_max_values_is_refused_before_decoding() -> None:
    limits = IngestLimits(max_prompts=5, max_columns=4)
    assert limits.max_values == 48
    error = _error("p.json", "[" + "[]," * 60 + "[]]", limits)
    assert (error.code, error.details["limit"]) == ("too_many_values", 48)
    commas_in_strings = json.dumps(["a," * 100, "b"])
    assert _parse("p.json", commas_in_strings, limits).rows[0]["prompt"] == "a," * 100


def test_json_duplicate_keys_name_the_element_and_the_key() -> None:
    error = _error("p.json", '[{"prompt": "a"}, {"prompt": "b", "act": 1, "act": 2}]')
    assert (error.code, error.details["element"], error.details["column"]) == ("duplicate_column", 2, "act")


@pytest.mark.parametrize("name", ["p.json", "p.jsonl"])
def test_a_number_python_cannot_convert_is_invalid_json_not_a_crash(name: str) -> None:
    document = '{"prompt": "a", "n": ' + "9" * 5000 + "}"
    error = _error(name, f"[{document}]" if name == "p.json" else document)
    assert error.code == "invalid_json"


@pytest.mark.parametrize(
    ("data", "details"),
    [
        ('"ok"\r"broken\r"fine"\r', {"line": 2, "character": 1}),
        ('"ok"\r\n{"prompt": "x"} trailing\r\n', {"line": 2, "character": 17}),
        ('  \u00a0\n"ok"\n', None),
    ],
    ids=["cr-line-ends", "extra-data", "unicode-blank-line"],
)
def test_jsonl_lines_decode_in_place_with_their_own_columns(data: str, details: dict[str, int] | None) -> None:
    if details is None:
        assert _parse("p.jsonl", data).rows == [{"prompt": "ok"}]
        return
    error = _error("p.jsonl", data)
    assert error.code == "invalid_json"
    assert {key: error.details[key] for key in details} == details


@pytest.mark.parametrize(
    "data",
    [b"prompt\r\n\xc0\xaf\r\n", b"prompt\r\nx \xe0\x80\xae y\r\n", b"prompt\r\n\xed\xa0\x80\r\n"],
    ids=["overlong-slash", "overlong-dot", "surrogate-half"],
)
def test_utf8_shaped_invalid_sequences_are_encoding_errors_not_guessed(data: bytes) -> None:
    error = _error("p.csv", data)
    assert (error.code, error.details["line"]) == ("encoding_error", 2)


def test_windows_1252_text_is_still_recognised() -> None:
    table = _parse("p.csv", "prompt\r\nRésumé for the café – “quoted”\r\n".encode("cp1252"), IngestLimits())
    assert table.rows[0]["prompt"] == "Résumé for the café – “quoted”"


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (b"prompt\r\nhi\r\n%PDF-1.5\r\n1 0 obj<<>>endobj\r\n%%EOF\r\n", "a PDF document"),
        (b"\xef\xbb\xbf  <!-- saved --> <!DOCTYPE html><html><body>prompt</body></html>", "an HTML page"),
        (b"<html lang='en'><body>prompt</body></html>", "an HTML page"),
    ],
    ids=["pdf-polyglot", "html-doctype", "html-tag"],
)
def test_pdf_polyglots_and_web_pages_are_unsupported_media_types(data: bytes, detected: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        _parse("p.csv", data)
    assert caught.value.details["detected"] == detected


def test_prompts_that_mention_pdf_or_html_are_not_mistaken_for_them() -> None:
    text = "prompt\r\nExplain the %PDF-1.7 header\r\n<html> vs <body>: explain\r\n"
    assert len(_parse("p.txt", text, IngestLimits()).rows) == 3


def _workbook(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _with_parts(data: bytes, parts: dict[str, bytes]) -> bytes:
    """``data`` with ``parts`` replacing (or added after) the entries of those names."""
    named = dict(parts)
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for entry in source.infolist():
            target.writestr(entry.filename, named.pop(entry.filename, source.read(entry)))
        for name, value in named.items():
            target.writestr(name, value)
    return buffer.getvalue()


SHEET_OPEN = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
SHEET_CLOSE = b"</sheetData></worksheet>"


def _cell(ref: str, text: str) -> bytes:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'.encode()


def test_a_sheet_with_a_prompt_in_the_last_row_is_read_sparsely_and_fast() -> None:
    sheet = (
        SHEET_OPEN
        + b'<row r="1">'
        + _cell("A1", "prompt")
        + b'</row><row r="1048576">'
        + _cell("A1048576", "far down")
        + b"</row>"
        + SHEET_CLOSE
    )
    started = time.thread_time()  # CPU time: unaffected by other processes on the machine
    table = _parse("p.xlsx", _with_parts(_workbook([["x"]]), {"xl/worksheets/sheet1.xml": sheet}))
    assert time.thread_time() - started < 0.5
    assert table.rows == [{"prompt": "far down"}]
    assert table.columns == ["prompt"]


def test_a_value_beyond_max_columns_in_a_sheet_is_too_many_columns() -> None:
    sheet = SHEET_OPEN + b'<row r="1">' + _cell("A1", "prompt") + _cell("E1", "fifth") + b"</row>" + SHEET_CLOSE
    error = _error("p.xlsx", _with_parts(_workbook([["x"]]), {"xl/worksheets/sheet1.xml": sheet}))
    assert (error.code, error.details["actual"]) == ("too_many_columns", 5)


def test_xlsx_cells_and_shared_strings_over_max_cells_are_too_many_values() -> None:
    limits = IngestLimits(max_prompts=5, max_columns=4)
    rows = b"".join(b'<row r="%d">' % n + b"<c><v>1</v></c>" * 4 + b"</row>" for n in range(1, 10))
    error = _error(
        "p.xlsx", _with_parts(_workbook([["x"]]), {"xl/worksheets/sheet1.xml": SHEET_OPEN + rows + SHEET_CLOSE}), limits
    )
    assert (error.code, error.details["limit"], error.details["actual"]) == ("too_many_values", 24, 36)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("../evil.xml", b"<x/>"),
        ("/abs.xml", b"<x/>"),
        ("C:/windows/evil.xml", b"<x/>"),
        ("xl/../../evil.bin", b"x"),
    ],
    ids=["dotdot", "absolute", "drive", "inner-dotdot"],
)
def test_entries_named_outside_the_archive_are_unsafe(name: str, content: bytes) -> None:
    error = _error("p.xlsx", _with_parts(_workbook([["prompt"], ["hi"]]), {name: content}))
    assert error.code == "unsafe_xlsx"


def test_a_part_in_utf16_or_a_foreign_encoding_is_unsafe() -> None:
    styles = '<?xml version="1.0" encoding="UTF-16"?><styleSheet/>'.encode("utf-16")
    assert (
        _error("p.xlsx", _with_parts(_workbook([["prompt"], ["hi"]]), {"xl/styles.xml": styles})).code == "unsafe_xlsx"
    )
    latin = b'<?xml version="1.0" encoding="ISO-8859-1"?><styleSheet/>'
    assert (
        _error("p.xlsx", _with_parts(_workbook([["prompt"], ["hi"]]), {"xl/styles.xml": latin})).code == "unsafe_xlsx"
    )


def test_the_budget_of_a_part_follows_its_root_element_not_its_name() -> None:
    fake_sheet = b"<!-- <worksheet> --><styleSheet>" + b"<xf/>" * 60_000 + b"</styleSheet>"
    error = _error("p.xlsx", _with_parts(_workbook([["prompt"], ["hi"]]), {"xl/styles.xml": fake_sheet}))
    assert error.code == "unsafe_xlsx"
    assert "the limit for a part of its kind is 50,000" in error.message


@given(st.text(st.sampled_from("ab\r\n\ufeff"), max_size=30))
def test_line_spans_split_like_the_line_break_pattern(text: str) -> None:
    start = 1 if text.startswith("\ufeff") else 0
    assert [text[a:b] for a, b, _ in line_spans(text)] == LINE_BREAK.split(text[start:])
    assert "".join(text[a:c] for a, _, c in line_spans(text)) == text[start:]


def test_a_file_of_random_bytes_never_crashes_the_parsers() -> None:
    rng = random.Random(7)
    for _ in range(200):
        data = rng.randbytes(rng.randrange(1, 400))
        for name in ("p.csv", "p.txt", "p.json", "p.jsonl", "p.xlsx"):
            try:
                _parse(name, data)
            except (InvalidContent, UnsupportedMediaType) as exc:
                assert re.fullmatch(r"[a-z_]+", exc.code)
