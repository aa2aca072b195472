"""The kit's own input reader sees an upload as the user wrote it, in every accepted format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utilities.check.input_reader import InputFormatError, read_input, read_pasted

pytestmark = pytest.mark.area("Ingest")

REAL_SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "awesome-chatgpt-prompts-2025-01.csv"


def test_real_sample_reads_all_175_rows_with_act_and_prompt():
    table = read_input(REAL_SAMPLE)
    assert (table.columns, table.prompt_column, len(table)) == (["act", "prompt"], "prompt", 175)
    assert table.rows[0]["act"] == "An Ethereum Developer"
    assert table.prompts[2].startswith("I want you to act as a linux terminal.")
    assert all(prompt.strip() for prompt in table.prompts)


@pytest.mark.parametrize(
    ("delimiter", "encoding"),
    [(",", "utf-8"), (";", "utf-8-sig"), ("\t", "utf-16"), (";", "cp1252")],
    ids=["comma-utf8", "semicolon-bom", "tab-utf16", "semicolon-cp1252"],
)
def test_csv_delimiters_and_encodings_are_detected(delimiter, encoding):
    text = delimiter.join(["Category", "Prompt"]) + "\r\n"
    text += delimiter.join(["café", '"Résumé, naïve — ‘quoted’ text"']) + "\r\n"
    text += delimiter.join(["math", "=1+1"]) + "\r\n"
    table = read_input(text.encode(encoding), "prompts.csv")
    assert (table.columns, table.prompt_column) == (["Category", "Prompt"], "Prompt")
    assert table.rows == [
        {"Category": "café", "Prompt": "Résumé, naïve — ‘quoted’ text"},
        {"Category": "math", "Prompt": "=1+1"},
    ]


def test_csv_skips_fully_empty_records_and_keeps_cell_text_exact():
    data = b'prompt,note\r\n"  spaced  ",\r\n,\r\n\r\n"multi\nline",x\r\n'
    table = read_input(data, "p.csv")
    assert table.rows == [{"prompt": "  spaced  ", "note": ""}, {"prompt": "multi\nline", "note": "x"}]


def test_csv_single_column_keeps_unquoted_commas_in_one_prompt():
    table = read_input(b"prompt\nHello, world\nBye\n", "p.csv")
    assert table.prompts == ["Hello, world", "Bye"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"act,text\na,b\n", "no 'prompt' column"),
        (b"prompt,note\na,b,c\n", "record 2 has 3 cells"),
        (b"prompt,prompt\na,b\n", "duplicate column"),
        (b"", "empty"),
    ],
    ids=["no-prompt-column", "ragged", "duplicate", "empty"],
)
def test_unreadable_csv_is_refused_with_a_reason(data, message):
    with pytest.raises(InputFormatError, match=message):
        read_input(data, "bad.csv")


def test_xlsx_reads_the_prompts_sheet_as_literal_text(tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.title = "notes"
    workbook.active.append(["ignored"])
    sheet = workbook.create_sheet("Prompts")
    sheet.append(["PROMPT", "weight", "flag"])
    sheet.append(['=HYPERLINK("http://evil")', 3, True])
    sheet.append([None, None, None])
    sheet.append(["Plain text", 0.25, None])
    path = tmp_path / "in.xlsx"
    workbook.save(path)

    table = read_input(path)
    assert (table.columns, table.prompt_column) == (["PROMPT", "weight", "flag"], "PROMPT")
    assert table.rows == [
        {"PROMPT": '=HYPERLINK("http://evil")', "weight": "3", "flag": "TRUE"},
        {"PROMPT": "Plain text", "weight": "0.25", "flag": ""},
    ]


def test_xlsx_without_prompts_sheet_uses_the_first(tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.append(["prompt"])
    workbook.active.append(["first sheet"])
    workbook.create_sheet("other").append(["prompt"])
    path = tmp_path / "in.xlsx"
    workbook.save(path)
    assert read_input(path).prompts == ["first sheet"]


def test_txt_and_paste_take_one_prompt_per_line_skipping_blanks():
    data = b"first\r\n\r\n  \nsecond line  \rthird"
    table = read_input(data, "prompts.txt")
    assert (table.columns, table.prompts) == (["prompt"], ["first", "second line  ", "third"])
    assert read_pasted("a\n\nb\n").prompts == ["a", "b"]
    assert read_input(b"pasted\nlines").prompts == ["pasted", "lines"]


def test_json_list_of_strings_and_objects():
    strings = read_input(json.dumps(["one", "two"]).encode(), "p.json")
    assert (strings.columns, strings.prompts) == (["prompt"], ["one", "two"])
    objects = read_input(json.dumps([{"Prompt": "a", "n": 1}, {"Prompt": "b", "tag": None}]).encode(), "p.json")
    assert (objects.columns, objects.prompt_column) == (["Prompt", "n", "tag"], "Prompt")
    assert objects.rows == [{"Prompt": "a", "n": "1", "tag": ""}, {"Prompt": "b", "n": "", "tag": ""}]


def test_jsonl_reads_one_value_per_line():
    data = b'{"prompt": "a", "k": "x"}\n\n"b"\n'
    table = read_input(data, "p.jsonl")
    assert table.rows == [{"prompt": "a", "k": "x"}, {"prompt": "b", "k": ""}]


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b'[{"text": "a"}]', "p.json", "no 'prompt' column"),
        (b"[1, 2]", "p.json", "item 1 is int"),
        (b"{not json", "p.json", "invalid JSON"),
        (b"a", "p.pdf", "unsupported file type"),
        (b"not a workbook", "p.xlsx", "not a readable XLSX"),
    ],
    ids=["json-no-prompt", "json-numbers", "json-broken", "pdf", "xlsx-broken"],
)
def test_unreadable_inputs_are_refused_with_a_reason(data, filename, message):
    with pytest.raises(InputFormatError, match=message):
        read_input(data, filename)


cell = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(cell, cell), max_size=10), st.sampled_from([",", ";", "\t"]))
def test_property_csv_round_trips_any_text(rows, delimiter):
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerows([("prompt", "note"), *rows])
    table = read_input(out.getvalue().encode("utf-8"), "p.csv")
    expected = [{"prompt": p, "note": n} for p, n in rows if p.strip() or n.strip()]
    assert table.rows == expected
