"""TXT, pasted text, JSON and JSON Lines ingest: shapes, line handling and errors naming line or element."""

from __future__ import annotations

import json

import pytest

from reference_backend.errors import InvalidContent, PayloadTooLarge
from reference_backend.ingest import IngestLimits, ParsedTable, parse_pasted_text, parse_upload

pytestmark = pytest.mark.area("Ingest")

LIMITS = IngestLimits()


def _parse(name: str, data: bytes | str) -> ParsedTable:
    return parse_upload(name, data.encode("utf-8") if isinstance(data, str) else data, LIMITS)


def _error(name: str, data: bytes | str) -> InvalidContent:
    with pytest.raises(InvalidContent) as caught:
        _parse(name, data)
    return caught.value


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
def test_txt_has_one_prompt_per_line_and_skips_blank_lines(newline: str) -> None:
    text = newline.join(["first, with comma", "", "  ", 'second; "quoted"', "  third keeps spaces  ", ""])
    table = _parse("prompts.txt", text)
    assert table.columns == ["prompt"]
    assert table.prompt_column == "prompt"
    assert table.source_format == "txt"
    assert [row["prompt"] for row in table.rows] == [
        "first, with comma",
        'second; "quoted"',
        "  third keeps spaces  ",
    ]


def test_txt_in_utf16_with_bom_decodes() -> None:
    table = _parse("prompts.txt", "中文提示\r\nEmoji 👩‍💻\r\n".encode("utf-16"))
    assert [row["prompt"] for row in table.rows] == ["中文提示", "Emoji 👩‍💻"]


def test_txt_errors_name_row_and_physical_line() -> None:
    error = _error("prompts.txt", "one\n\n\ntwo\x1b[0m\n")
    assert error.code == "invalid_characters"
    assert error.details == {
        "filename": "prompts.txt",
        "row": 2,
        "line": 4,
        "column": "prompt",
        "codepoint": "U+001B",
    }


def test_txt_prompt_count_boundary() -> None:
    assert len(_parse("p.txt", "x\n" * 1000).rows) == 1000
    error = _error("p.txt", "x\n" * 1001)
    assert (error.code, error.details["limit"], error.details["actual"]) == ("too_many_prompts", 1000, 1001)


def test_pasted_text_is_parsed_like_txt_with_its_own_source_format() -> None:
    table = parse_pasted_text("\ufeffalpha\r\n\r\n=1+1\nגמא\n", LIMITS)
    assert table.source_format == "text"
    assert table.columns == ["prompt"]
    assert [row["prompt"] for row in table.rows] == ["alpha", "=1+1", "גמא"]


def test_pasted_text_that_is_blank_is_empty_file() -> None:
    with pytest.raises(InvalidContent) as caught:
        parse_pasted_text(" \n\t\n", LIMITS)
    assert caught.value.code == "empty_file"
    assert "filename" not in caught.value.details


def test_pasted_text_over_the_byte_limit_is_payload_too_large() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        parse_pasted_text("é" * 600, IngestLimits(max_bytes=1000))
    assert (caught.value.status, caught.value.details) == (413, {"limit": 1000, "actual": 1200})


@pytest.mark.parametrize(
    "document",
    [
        ["first", "second"],
        {"prompts": ["first", "second"]},
        [{"prompt": "first"}, {"prompt": "second"}],
        {"prompts": [{"prompt": "first"}, "second"]},
    ],
    ids=["list-of-strings", "prompts-object", "list-of-objects", "mixed"],
)
def test_json_accepted_shapes(document: object) -> None:
    table = _parse("p.json", json.dumps(document))
    assert table.source_format == "json"
    assert table.prompt_column == "prompt"
    assert [row["prompt"] for row in table.rows] == ["first", "second"]


def test_json_objects_keep_other_fields_as_text() -> None:
    document = [
        {"Prompt": "first", "id": 7, "score": 0.5, "ok": True, "note": None, "tags": ["a", "ü"]},
        {"Prompt": "second", "extra": "only here"},
    ]
    table = _parse("p.json", json.dumps(document))
    assert table.columns == ["Prompt", "id", "score", "ok", "note", "tags", "extra"]
    assert table.prompt_column == "Prompt"
    assert table.rows[0] == {
        "Prompt": "first",
        "id": "7",
        "score": "0.5",
        "ok": "true",
        "note": "",
        "tags": '["a", "ü"]',
        "extra": "",
    }
    assert table.rows[1]["extra"] == "only here"


def test_json_skips_empty_elements_and_names_the_element_in_errors() -> None:
    error = _error("p.json", json.dumps(["", {}, "ok", "bad\u0000nul"]))
    assert error.code == "invalid_characters"
    assert {key: error.details[key] for key in ("row", "element", "codepoint")} == {
        "row": 2,
        "element": 4,
        "codepoint": "U+0000",
    }


@pytest.mark.parametrize(
    ("data", "details"),
    [
        ('[\n  "a",\n  "b",,\n]', {"line": 3, "character": 7}),
        ('{"prompt": "x"}', {}),
        ('["a", 3, "b"]', {"element": 2}),
        ('{"prompt": "a"}\n{"prompt": "b"}\n', {"line": 2, "character": 1}),
    ],
    ids=["syntax-error", "single-object", "number-element", "jsonl-named-json"],
)
def test_invalid_json_names_line_or_element(data: str, details: dict[str, int]) -> None:
    error = _error("p.json", data)
    assert error.code == "invalid_json"
    assert error.details == {"filename": "p.json", **details}


def test_json_object_without_prompt_next_to_others_is_a_failed_empty_prompt_row() -> None:
    table = _parse("p.json", json.dumps([{"prompt": "a"}, {"act": "b"}]))
    assert table.rows == [{"prompt": "a", "act": ""}, {"prompt": "", "act": "b"}]
    assert {row: failure.code for row, failure in table.failures.items()} == {2: "empty_prompt"}
    assert "Row 2 (element 2)" in table.failures[2].message


def test_json_without_any_prompt_field_is_missing_prompt_column() -> None:
    error = _error("p.json", json.dumps([{"text": "a", "act": "b"}]))
    assert (error.code, error.details["columns"]) == ("missing_prompt_column", ["text", "act"])


@pytest.mark.parametrize("data", ["[]", '{"prompts": []}', '["", "  "]'], ids=["empty-list", "empty-prompts", "blank"])
def test_json_without_prompts_is_no_prompts(data: str) -> None:
    assert _error("p.json", data).code == "no_prompts"


def test_jsonl_reads_strings_and_objects_and_skips_blank_lines() -> None:
    data = '{"prompt": "first", "act": "A"}\r\n\r\n"second"\n  \n{"prompt": "third\\nline"}\n'
    table = _parse("p.jsonl", data)
    assert table.source_format == "jsonl"
    assert table.rows == [
        {"prompt": "first", "act": "A"},
        {"prompt": "second", "act": ""},
        {"prompt": "third\nline", "act": ""},
    ]


@pytest.mark.parametrize(
    ("data", "details"),
    [
        ('"ok"\n\n{"prompt": broken}\n', {"line": 3, "character": 12}),
        ('"ok"\n[1, 2]\n', {"line": 2}),
    ],
    ids=["syntax-error", "list-on-a-line"],
)
def test_invalid_jsonl_names_the_line(data: str, details: dict[str, int]) -> None:
    error = _error("p.jsonl", data)
    assert error.code == "invalid_json"
    assert error.details == {"filename": "p.jsonl", **details}


def test_jsonl_prompt_over_a_provider_limit_is_a_failed_row_naming_row_and_line() -> None:
    data = ('"short"\n\n' + json.dumps("x" * 32_001) + "\n").encode()
    table = parse_upload("p.jsonl", data, IngestLimits(max_prompt_chars=32_000))
    assert len(table.rows) == 2
    assert table.failures[2].code == "prompt_too_long"
    assert table.failures[2].message.startswith("Row 2 (line 3): the prompt is 32,001 characters long")
    assert _parse("p.jsonl", data).failures == {}
