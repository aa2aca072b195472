"""CSV ingest: the real sample, encodings, delimiters, quoting, and every content rule with its details."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_backend.errors import InvalidContent
from reference_backend.ingest import IngestLimits, ParsedTable, parse_upload

pytestmark = pytest.mark.area("Ingest")

LIMITS = IngestLimits()
REAL_SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "awesome-chatgpt-prompts-2025-01.csv"
FIRST_REAL_PROMPT = (
    "Imagine you are an experienced Ethereum developer tasked with creating a smart contract for a "
    "blockchain messenger. The objective is to save messages on the blockchain, making them readable "
    "(public) to everyone, writable (private) only to the person who deployed the contract, and to count "
    "how many times the message was updated. Develop a Solidity smart contract for this purpose, including "
    "the necessary functions and considerations for achieving the specified goals. Please provide the code "
    "and any relevant explanations to ensure a clear understanding of the implementation."
)
TRICKY_PROMPTS = {
    "cjk": "用中文写一首关于秋天的诗。日本語も。한국어도.",
    "rtl": "اكتب قصيدة عن البحر — כתוב שיר על הים",
    "emoji_zwj": "Describe this family: 👨‍👩‍👧‍👦 and 🏳️‍🌈",
    "combining": "Cafe\u0301 vs Café; Z\u0351\u0364a\u0334lgo",
    "quotes_commas": 'She said "hi, there"; then left, quickly.',
    "html": "<script>alert('x')</script> &amp; <b>bold</b>",
    "formula": "=1+1",
    "leading_at_plus": "@SUM(A1) +cmd -x",
    "tabs_inside": "a\tb\tc",
}


def _csv_quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _parse(data: bytes | str, name: str = "prompts.csv", limits: IngestLimits = LIMITS) -> ParsedTable:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return parse_upload(name, raw, limits)


def _error(data: bytes | str, limits: IngestLimits = LIMITS) -> InvalidContent:
    with pytest.raises(InvalidContent) as caught:
        _parse(data, limits=limits)
    return caught.value


def test_real_sample_parses_all_175_rows_with_exact_text() -> None:
    table = parse_upload(REAL_SAMPLE.name, REAL_SAMPLE.read_bytes(), LIMITS)
    assert table.columns == ["act", "prompt"]
    assert table.prompt_column == "prompt"
    assert table.source_format == "csv"
    assert len(table.rows) == 175
    assert table.rows[0] == {"act": "An Ethereum Developer", "prompt": FIRST_REAL_PROMPT}


@pytest.mark.parametrize(
    "encoding",
    ["utf-8", "utf-8-sig", "utf-16", "utf-16-be-bom", "utf-16-le-no-bom", "cp1252"],
)
def test_supported_encodings_decode_to_the_same_rows(encoding: str) -> None:
    text = "act\tprompt\r\nChef\tWrite about crème brûlée – “naïve” café\r\nBot\tSay ¿qué tal?\r\n"
    data = {
        "utf-8": text.encode("utf-8"),
        "utf-8-sig": text.encode("utf-8-sig"),
        "utf-16": text.encode("utf-16"),
        "utf-16-be-bom": b"\xfe\xff" + text.encode("utf-16-be"),
        "utf-16-le-no-bom": text.encode("utf-16-le"),
        "cp1252": text.encode("cp1252"),
    }[encoding]
    table = _parse(data)
    assert table.columns == ["act", "prompt"]
    assert [row["prompt"] for row in table.rows] == [
        "Write about crème brûlée – “naïve” café",
        "Say ¿qué tal?",
    ]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_each_delimiter_is_sniffed(delimiter: str) -> None:
    others = ", ; \t".replace(delimiter, "")
    text = delimiter.join(["act", "prompt", "note"]) + "\n"
    text += delimiter.join(["A", _csv_quote(f"Has {others} inside{delimiter} and quoted"), "n1"]) + "\n"
    text += delimiter.join(["B", f"plain{others.strip()}", "n2"]) + "\n"
    table = _parse(text)
    assert table.columns == ["act", "prompt", "note"]
    assert table.rows[0]["prompt"] == f"Has {others} inside{delimiter} and quoted"
    assert table.rows[1] == {"act": "B", "prompt": f"plain{others.strip()}", "note": "n2"}


def test_single_column_file_keeps_delimiters_inside_prompts() -> None:
    text = "prompt\nHello, world; how are you?\nTabs\tand, commas; everywhere, here\nPlain\n"
    table = _parse(text)
    assert table.columns == ["prompt"]
    assert [row["prompt"] for row in table.rows] == [
        "Hello, world; how are you?",
        "Tabs\tand, commas; everywhere, here",
        "Plain",
    ]


@pytest.mark.parametrize("header", ["Prompt", " PROMPT ", "\ufeffprompt", "pRoMpT\t"])
def test_prompt_column_is_found_case_and_space_insensitively(header: str) -> None:
    table = _parse(f"id,{header}\n1,Hi\n")
    assert table.prompt_column == header
    assert table.rows == [{"id": "1", header: "Hi"}]


def test_multiline_quoted_fields_keep_their_line_breaks() -> None:
    data = b'prompt,act\r\n"line one\r\nline two\nline three",x\r\n"single",y\r\n'
    table = _parse(data)
    assert table.rows == [
        {"prompt": "line one\r\nline two\nline three", "act": "x"},
        {"prompt": "single", "act": "y"},
    ]


@pytest.mark.parametrize("prompt", TRICKY_PROMPTS.values(), ids=TRICKY_PROMPTS.keys())
def test_special_and_unicode_prompts_come_through_byte_exact(prompt: str) -> None:
    table = _parse(f"prompt,act\n{_csv_quote(prompt)},x\n")
    assert table.rows[0]["prompt"].encode("utf-8") == prompt.encode("utf-8")


def test_values_keep_surrounding_whitespace() -> None:
    table = _parse('prompt,act\n"  padded prompt  ", spaced act \n')
    assert table.rows == [{"prompt": "  padded prompt  ", "act": " spaced act "}]


def test_unterminated_quote_names_the_line_where_it_opens() -> None:
    text = 'act,prompt\nA,first\nB,"never closed\nC,third\nD,fourth\n'
    error = _error(text)
    assert error.code == "corrupt_csv"
    assert error.details["line"] == 3
    assert error.details["filename"] == "prompts.csv"
    assert "Line 3" in error.message


def test_text_after_a_closing_quote_is_corrupt_csv() -> None:
    error = _error('act,prompt\nA,"quoted" tail\n')
    assert (error.code, error.details["line"]) == ("corrupt_csv", 2)


def test_row_with_too_many_fields_is_corrupt_csv_with_line() -> None:
    error = _error("act,prompt\nA,one\nB,two,extra\n")
    assert error.code == "corrupt_csv"
    assert error.details | {"filename": None} == {"filename": None, "line": 3, "expected": 2, "actual": 3}


def test_trailing_empty_fields_and_short_rows_are_tolerated() -> None:
    table = _parse("prompt,act,\nHi,a,\nBye,,,\nShort\n")
    assert table.columns == ["prompt", "act"]
    assert table.rows == [
        {"prompt": "Hi", "act": "a"},
        {"prompt": "Bye", "act": ""},
        {"prompt": "Short", "act": ""},
    ]


def test_empty_records_are_skipped_and_not_numbered() -> None:
    table = _parse("prompt,act\n\n,\nfirst,a\n , \n,second-has-no-prompt\n")
    assert table.rows == [{"prompt": "first", "act": "a"}, {"prompt": "", "act": "second-has-no-prompt"}]
    assert list(table.failures) == [2]
    assert str(table.failures[2]) == "empty_prompt: Row 2 (line 6): the prompt is empty; the row was not processed."


def test_every_empty_prompt_next_to_other_values_is_a_failed_row_not_a_refusal() -> None:
    body = "".join(f",act{n}\n" if n % 2 else f"p{n},x\n" for n in range(60))
    table = _parse("prompt,act\n" + body)
    assert len(table.rows) == 60
    assert sorted(table.failures) == list(range(2, 61, 2))
    assert {failure.code for failure in table.failures.values()} == {"empty_prompt"}


def test_nul_byte_is_invalid_characters_with_row_column_and_codepoint() -> None:
    error = _error(b"act,prompt\nA,fine\nB,bad\x00value\n")
    assert error.code == "invalid_characters"
    assert error.details == {
        "filename": "prompts.csv",
        "row": 2,
        "line": 3,
        "column": "prompt",
        "codepoint": "U+0000",
    }


def test_other_control_characters_are_refused_but_tab_cr_lf_are_fine() -> None:
    assert _parse('prompt\n"a\tb\rc\nd"\n').rows[0]["prompt"] == "a\tb\rc\nd"
    error = _error("prompt,act\nok,bell\x07\n")
    assert (error.code, error.details["column"], error.details["codepoint"]) == (
        "invalid_characters",
        "act",
        "U+0007",
    )


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"prompt\ncaf\xc3\xa9 and caf\xe9\n", 2),
        (b"prompt\nok\n" + bytes(range(0x80, 0x100)) * 3, 3),
        (b"\xef\xbb\xbfprompt\nbad \xff byte\n", 2),
    ],
    ids=["mixed-utf8-and-latin1", "undetectable-bytes", "utf8-bom-with-bad-bytes"],
)
def test_untrustworthy_encoding_is_encoding_error_with_line(data: bytes, line: int) -> None:
    error = _error(data)
    assert error.code == "encoding_error"
    assert error.details["line"] == line
    assert "UTF-8" in error.message


@pytest.mark.parametrize(
    "data",
    [b"", b"   \r\n\t\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf  \n", "  \n".encode("utf-16")],
    ids=["zero-bytes", "whitespace", "utf8-bom-only", "bom-and-whitespace", "utf16-whitespace"],
)
def test_empty_file_is_refused(data: bytes) -> None:
    assert _error(data).code == "empty_file"


@pytest.mark.parametrize("text", ["prompt,act\n", "prompt,act\r\n\r\n,\r\n"], ids=["header-only", "blank-rows"])
def test_header_without_rows_is_no_prompts(text: str) -> None:
    assert _error(text).code == "no_prompts"


def test_missing_prompt_column_lists_the_columns_found() -> None:
    error = _error("act;text\nA;hello\n")
    assert error.code == "missing_prompt_column"
    assert error.details["columns"] == ["act", "text"]


@pytest.mark.parametrize(
    ("header", "column"),
    [("prompt,act,act", "act"), ("prompt,Notes,NOTES ", "NOTES "), ("Prompt,prompt", "prompt")],
    ids=["exact", "case-and-space", "two-prompt-columns"],
)
def test_duplicate_columns_are_refused(header: str, column: str) -> None:
    error = _error(f"{header}\n" + ",".join("x" * len(header.split(","))) + "\n")
    assert error.code == "duplicate_column"
    assert error.details["column"] == column


@pytest.mark.parametrize(
    "name", ["row_number", "Enhanced_Prompt", " techniques ", "ROW_STATUS", "row_error"], ids=str.strip
)
def test_reserved_columns_are_refused(name: str) -> None:
    error = _error(f"prompt,{name}\nhi,x\n")
    assert error.code == "reserved_column"
    assert error.details["column"] == name


@pytest.mark.parametrize(("count", "accepted"), [(1000, True), (1001, False)], ids=["1000-ok", "1001-refused"])
def test_prompt_count_boundary(count: int, accepted: bool) -> None:
    text = "prompt\n" + "".join(f"prompt number {n}\n" for n in range(count))
    if accepted:
        assert len(_parse(text).rows) == 1000
        return
    error = _error(text)
    assert error.code == "too_many_prompts"
    assert (error.details["limit"], error.details["actual"]) == (1000, 1001)
    assert "1,001" in error.message
    assert "1,000" in error.message


def test_prompts_far_over_32000_characters_are_accepted_by_default() -> None:
    text = f'prompt,act\nshort,a\n"{"x, y" * 25_000}",b\n'
    table = _parse(text)
    assert len(table.rows[1]["prompt"]) == 100_000
    assert table.failures == {}


@pytest.mark.parametrize(("length", "fails"), [(32_000, False), (32_001, True)], ids=["32000-ok", "32001-fails"])
def test_a_provider_prompt_limit_fails_the_row_and_keeps_the_rest(length: int, fails: bool) -> None:
    text = f"prompt,act\nshort,a\n{'x' * length},b\nafter,c\n"
    table = _parse(text, limits=IngestLimits(max_prompt_chars=32_000))
    assert [len(row["prompt"]) for row in table.rows] == [5, length, 5]
    if not fails:
        assert table.failures == {}
        return
    assert list(table.failures) == [2]
    assert table.failures[2].code == "prompt_too_long"
    assert table.failures[2].message.startswith(
        "Row 2 (line 3): the prompt is 32,001 characters long; this deployment's provider accepts at most 32,000."
    )


def test_prompt_length_counts_characters_not_bytes() -> None:
    emoji = "😀" * 32_000
    assert _parse(f"prompt\n{emoji}\n").rows[0]["prompt"] == emoji


def test_fields_longer_than_the_default_csv_field_limit_parse() -> None:
    other = "y" * 200_000
    table = _parse(f"prompt,notes\nhi,{other}\n")
    assert table.rows[0]["notes"] == other
