"""parse(render(table)) == table: any prompt table written as CSV, TXT or XLSX parses back to the same rows.

Tables come from hypothesis; files from ``utilities.gen.render`` (the writer of the committed
fixtures: every delimiter, line ending and encoding it offers) and are read by the backend's own
``parse_upload``. What a format cannot carry by its nature is kept out of the strategies, each with its
reason next to it.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_backend.ingest import RESERVED_COLUMNS, IngestLimits, parse_upload
from utilities.gen import DELIMITERS, LINE_ENDINGS, GenSpec, render

pytestmark = pytest.mark.area("Ingest")

LIMITS = IngestLimits()
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text a user can type: no surrogates (not encodable), no control characters (refused by design, see
# ingest/table.py) except tab, LF and CR, which prompts legitimately hold. U+FFFE/U+FFFF are not
# characters in any encoding's sense and XML refuses them.
_TYPED = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
CELL = st.text(st.one_of(_TYPED, st.sampled_from("\t\n\r \u00a0")), max_size=40) | st.sampled_from(
    ["", " ", "  padded  ", "=SUM(A1:A2)", "+1", "-1", "@me", "0042", "1e5", "3.0", "TRUE", "NA", "null", '"']
)
PROMPT = CELL.filter(lambda text: text.strip())
# Names hold no delimiter or quote: a tab file whose header holds "a,prompt" reads just as well with
# commas, and no sniffer can tell which was meant. They are unique and unreserved as the contract asks.
NAME = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters=',;"\ufeff\ufffe\uffff'),
    min_size=1,
    max_size=12,
).filter(lambda name: name.strip() and _key(name) not in {"prompt", *RESERVED_COLUMNS})


def _key(name: str) -> str:
    return name.strip().casefold()


@st.composite
def tables(draw: st.DrawFn, cell: st.SearchStrategy[str] = CELL, prompt: st.SearchStrategy[str] = PROMPT) -> tuple:
    extra = draw(st.lists(NAME, max_size=4, unique_by=_key))
    rows = draw(
        st.lists(
            st.fixed_dictionaries({"prompt": prompt, **dict.fromkeys(extra, cell)}),
            min_size=1,
            max_size=12,
        )
    )
    return tuple(extra), rows


def _assert_round_trip(spec: GenSpec, rows: list[dict[str, str]]) -> None:
    data = render(spec, rows)
    table = parse_upload(f"prompts.{spec.fmt}", data, LIMITS)
    assert table.columns == list(spec.columns)
    assert table.prompt_column == "prompt"
    assert table.rows == rows


@EXAMPLES
@given(
    table=tables(),
    delimiter=st.sampled_from(DELIMITERS),
    line_ending=st.sampled_from(LINE_ENDINGS),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_csv_round_trips(table: tuple, delimiter: str, line_ending: str, encoding: str) -> None:
    extra, rows = table
    spec = GenSpec(rows=len(rows), extra_columns=extra, delimiter=delimiter, line_ending=line_ending, encoding=encoding)
    _assert_round_trip(spec, rows)


@pytest.mark.parametrize("delimiter", DELIMITERS)
@pytest.mark.parametrize("prompt", [",", ";", "x,", ";;"])
def test_a_one_column_file_keeps_a_prompt_that_is_a_delimiter(delimiter: str, prompt: str) -> None:
    rows = [{"prompt": "0"}, {"prompt": prompt}]
    _assert_round_trip(GenSpec(rows=2, extra_columns=(), delimiter=delimiter), rows)


# A TXT line is the prompt, so a prompt cannot hold a line break; a BOM first in the file is its encoding
# mark, not text.
TXT_PROMPT = PROMPT.filter(lambda text: "\r" not in text and "\n" not in text)


@EXAMPLES
@given(
    prompts=st.lists(TXT_PROMPT, min_size=1, max_size=12).filter(lambda prompts: not prompts[0].startswith("\ufeff")),
    line_ending=st.sampled_from(LINE_ENDINGS),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_txt_round_trips(prompts: list[str], line_ending: str, encoding: str) -> None:
    spec = GenSpec(rows=len(prompts), fmt="txt", line_ending=line_ending, encoding=encoding)
    _assert_round_trip(spec, [{"prompt": prompt} for prompt in prompts])


# XML turns a CR into LF when it reads (XML 1.0, 2.11) and openpyxl writes one raw, so an XLSX written by
# openpyxl cannot carry a CR. (Excel writes it as _x000D_, which openpyxl leaves as text.)
XLSX_CELL = CELL.filter(lambda text: "\r" not in text)


@EXAMPLES
@given(table=tables(XLSX_CELL, XLSX_CELL.filter(lambda text: text.strip())))
def test_xlsx_round_trips(table: tuple) -> None:
    extra, rows = table
    _assert_round_trip(GenSpec(rows=len(rows), extra_columns=extra, fmt="xlsx"), rows)


def test_round_trip_examples_that_once_broke() -> None:
    """Explicit cases, each a way a reader usually loses text."""
    rows = [
        {"prompt": "  leading and trailing  ", "note": "\ttab first"},
        {"prompt": "cr\rinside", "note": "crlf\r\ninside"},
        {"prompt": "=1+1", "note": "0042"},
        {"prompt": "line\nbreak", "note": ""},
        {"prompt": "last value is a space", "note": " "},
        {"prompt": string.punctuation, "note": "\u2028\u00a0"},
    ]
    _assert_round_trip(GenSpec(rows=len(rows), extra_columns=("note",), line_ending="\n"), rows)
    xlsx_rows = [{key: value.replace("\r", "") for key, value in row.items()} for row in rows]
    _assert_round_trip(GenSpec(rows=len(rows), extra_columns=("note",), fmt="xlsx"), xlsx_rows)
