"""The prompt-file generator: reproducible bytes, faithful round trips, honest invalid files, no fixture drift."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import defusedxml.ElementTree
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

from utilities.gen import (
    BOMB_SHEET,
    CP1252_SAFE_MIXES,
    FORMATS,
    INVALID_VARIANTS,
    MAX_PROMPTS,
    MAX_UPLOAD_BYTES,
    MIXES,
    GenSpec,
    generate,
    generate_rows,
    render,
)
from utilities.gen import (
    gen as gen_command,
)

pytestmark = pytest.mark.area("Generators")

COMMITTED = Path(__file__).resolve().parents[1] / "fixtures" / "files"
EVERY_MIX = GenSpec(
    rows=2 * len(MIXES), mix=MIXES, extra_columns=("category", "tags", "mix"), locales=("en_US", "ja_JP")
)

MIX_CHECKS: dict[str, Callable[[str], bool]] = {
    "plain": lambda p: p.isprintable() and len(p) < 500 and p[0] not in "=+-@",
    "cjk": lambda p: any("\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" for c in p),
    "rtl": lambda p: any(unicodedata.bidirectional(c) in ("R", "AL") for c in p),
    "emoji_zwj": lambda p: "\N{ZERO WIDTH JOINER}" in p,
    "combining": lambda p: any(unicodedata.category(c) == "Mn" for c in p),
    "special_chars": lambda p: any(c in p for c in "\"'<&\\|€“"),
    "formula_leading": lambda p: p[0] in "=+-@\t\r",
    "very_long": lambda p: len(p) >= 1_900,
    "multiline": lambda p: "\n" in p,
}


def read_csv(data: bytes, spec: GenSpec) -> list[dict[str, str]]:
    text = data.decode(spec.encoding)
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=spec.delimiter))


def read_xlsx(data: bytes) -> list[dict[str, str]]:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    header, *rows = sheet.iter_rows(values_only=True)
    return [dict(zip(header, row, strict=True)) for row in rows]


def tree(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("fixtures")
    result = CliRunner().invoke(gen_command, ["--fixtures", str(dest)])
    assert result.exit_code == 0, result.output
    return dest


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_seed_gives_same_bytes_and_another_seed_differs(fmt: str) -> None:
    spec = GenSpec(rows=2 * len(MIXES), fmt=fmt, mix=MIXES, locales=("en_US", "ja_JP", "ar_AA"), seed=7)
    first = generate(spec)
    assert generate(spec) == first
    assert generate(replace(spec, seed=8)) != first


@pytest.mark.parametrize("rows", [0, 1, 10, MAX_PROMPTS])
def test_row_count_follows_the_spec(rows: int) -> None:
    spec = GenSpec(rows=rows, seed=3)
    assert len(generate_rows(spec)) == rows
    assert len(read_csv(generate(spec), spec)) == rows


def test_rows_cycle_through_the_mix_in_order() -> None:
    rows = generate_rows(EVERY_MIX)
    assert [row["mix"] for row in rows] == list(MIXES) * 2
    failures = [(row["mix"], row["prompt"][:60]) for row in rows if not MIX_CHECKS[row["mix"]](row["prompt"])]
    assert not failures


def test_plain_prompts_read_as_requests_with_category_and_tags() -> None:
    rows = generate_rows(GenSpec(rows=50, seed=1))
    verbs = ("Write", "Explain", "Create", "Draft", "List", "Plan", "Summarize", "Compare")
    assert all(row["prompt"].startswith(verbs) for row in rows)
    assert not any("lorem" in row["prompt"].lower() for row in rows)
    assert len({row["prompt"] for row in rows}) == 50
    assert all(1 <= len(row["tags"].split(",")) <= 3 for row in rows)
    assert len({row["category"] for row in rows}) > 3


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
@pytest.mark.parametrize("line_ending", ["\r\n", "\n"], ids=["crlf", "lf"])
def test_csv_parses_back_to_the_same_rows(encoding: str, delimiter: str, line_ending: str) -> None:
    spec = replace(EVERY_MIX, encoding=encoding, delimiter=delimiter, line_ending=line_ending)
    data = generate(spec)
    assert read_csv(data, spec) == generate_rows(spec)
    assert data.decode(encoding).startswith(delimiter.join(spec.columns) + line_ending)


def test_csv_reads_the_same_in_pandas() -> None:
    frame = pd.read_csv(io.BytesIO(generate(EVERY_MIX)), dtype=str, keep_default_na=False)
    assert frame.to_dict("records") == generate_rows(EVERY_MIX)


def test_boms_are_written_and_utf16_is_little_endian() -> None:
    assert generate(GenSpec(encoding="utf-8-sig")).startswith(b"\xef\xbb\xbfprompt")
    assert generate(GenSpec(encoding="utf-16")).startswith(b"\xff\xfep\x00r\x00")
    assert generate(GenSpec(encoding="utf-8")).startswith(b"prompt,")


def test_cp1252_holds_latin_mixes_and_refuses_the_rest() -> None:
    spec = GenSpec(rows=20, mix=CP1252_SAFE_MIXES, locales=("en_US", "de_DE"), encoding="cp1252")
    assert read_csv(generate(spec), spec) == generate_rows(spec)
    with pytest.raises(ValueError, match="no cp1252 form"):
        generate(GenSpec(rows=2, mix=("cjk",), encoding="cp1252"))


def test_xlsx_reads_back_in_openpyxl_as_the_same_rows() -> None:
    spec = replace(EVERY_MIX, fmt="xlsx")
    data = generate(spec)
    assert read_xlsx(data) == generate_rows(spec)
    cells = [cell for cell in openpyxl.load_workbook(io.BytesIO(data)).active["A"] if cell.value[0] in "=+-@"]
    assert cells
    assert all(cell.data_type == "s" for cell in cells)


def test_xlsx_zip_is_normalised() -> None:
    with zipfile.ZipFile(io.BytesIO(generate(GenSpec(fmt="xlsx")))) as archive:
        infos = archive.infolist()
        core = archive.read("docProps/core.xml").decode()
    assert [info.filename for info in infos] == sorted(info.filename for info in infos)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert "2000-01-01T00:00:00Z</dcterms:created>" in core
    assert "2000-01-01T00:00:00Z</dcterms:modified>" in core


def test_same_seed_gives_the_same_prompts_in_every_format() -> None:
    csv_rows = generate_rows(GenSpec(seed=10))
    assert read_xlsx(generate(GenSpec(fmt="xlsx", seed=10))) == csv_rows
    assert json.loads(generate(GenSpec(fmt="json", seed=10))) == csv_rows
    jsonl = generate(GenSpec(fmt="jsonl", seed=10)).decode().splitlines()
    assert [json.loads(line) for line in jsonl] == csv_rows
    assert generate(GenSpec(fmt="txt", seed=10)).decode().splitlines() == [row["prompt"] for row in csv_rows]


def test_txt_puts_every_prompt_on_one_line() -> None:
    spec = replace(EVERY_MIX, fmt="txt", line_ending="\n")
    rows = generate_rows(spec)
    assert generate(spec).decode().split("\n") == [*(row["prompt"] for row in rows), ""]
    assert all(set(row) == {"prompt"} and row["prompt"] == row["prompt"].strip() for row in rows)
    with pytest.raises(ValueError, match="one prompt per line"):
        render(GenSpec(fmt="txt"), [{"prompt": "two\nlines"}])


def test_spec_refuses_unknown_settings() -> None:
    with pytest.raises(ValueError, match="mix must name") as refused:
        GenSpec(mix=("plain", "klingon"), fmt="pdf")  # type: ignore[arg-type]
    assert "fmt must be one of" in str(refused.value)
    with pytest.raises(ValueError, match="extra_columns"):
        GenSpec(extra_columns=("prompt",))


def test_unicode_mix_fixture_covers_every_mix() -> None:
    spec = GenSpec(extra_columns=("category", "tags", "mix"))
    rows = read_csv((COMMITTED / "unicode-mix.csv").read_bytes(), spec)
    assert {row["mix"] for row in rows} == set(MIXES)
    assert all(MIX_CHECKS[row["mix"]](row["prompt"]) for row in rows)
    assert {row["prompt"][0] for row in rows if row["mix"] == "formula_leading"} == set("=+-@\t\r")


@pytest.mark.parametrize("name", INVALID_VARIANTS)
def test_invalid_variants_are_reproducible(name: str) -> None:
    filename, data = INVALID_VARIANTS[name]()
    assert INVALID_VARIANTS[name]() == (filename, data)
    assert filename.endswith((".csv", ".xlsx"))


def test_empty_and_header_only() -> None:
    assert INVALID_VARIANTS["empty"]()[1] == b""
    assert INVALID_VARIANTS["header_only"]()[1] == b"prompt,category,tags\r\n"


def test_too_many_rows_parses_to_1001_records() -> None:
    records = list(csv.reader(io.StringIO(INVALID_VARIANTS["too_many_rows"]()[1].decode(), newline="")))
    assert records[0] == ["prompt", "category", "tags"]
    assert len(records) - 1 == MAX_PROMPTS + 1


def test_too_large_is_one_byte_over_10_mib_and_otherwise_valid() -> None:
    data = INVALID_VARIANTS["too_large"]()[1]
    assert len(data) == MAX_UPLOAD_BYTES + 1
    rows = read_csv(data, GenSpec())
    assert len(rows) <= MAX_PROMPTS
    assert all(0 < len(row["prompt"]) < 32_000 and row["category"] and row["tags"] for row in rows)


def test_corrupt_csv_has_an_unterminated_quote_on_line_3() -> None:
    data = INVALID_VARIANTS["corrupt_csv"]()[1]
    lines = data.split(b"\r\n")
    assert data.count(b'"') == 1
    assert lines[2].startswith(b'"')
    with pytest.raises(csv.Error, match="unexpected end of data"):
        list(csv.reader(io.StringIO(data.decode(), newline=""), strict=True))
    with pytest.raises(pd.errors.ParserError):
        pd.read_csv(io.BytesIO(data))


def test_column_variants_name_the_wrong_columns() -> None:
    assert INVALID_VARIANTS["missing_prompt_column"]()[1].startswith(b"text,category,tags\r\n")
    assert INVALID_VARIANTS["reserved_column"]()[1].startswith(b"prompt,category,row_status\r\n")


def test_truncated_xlsx_is_a_zip_without_its_directory() -> None:
    data = INVALID_VARIANTS["truncated_xlsx"]()[1]
    assert data.startswith(b"PK\x03\x04")
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(data))


def test_png_as_xlsx_is_a_real_png() -> None:
    filename, data = INVALID_VARIANTS["png_as_xlsx"]()
    assert filename.endswith(".xlsx")
    assert data.startswith(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
    assert data.endswith(b"IEND\xaeB`\x82")
    idat_length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    assert zlib.decompress(data[41 : 41 + idat_length]) == b"\x00\x2e\x86\xc1"


def test_zip_bomb_declares_far_more_than_it_weighs_and_inflates_honestly() -> None:
    data = INVALID_VARIANTS["xlsx_zip_bomb"]()[1]
    assert len(data) < 1024 * 1024
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet = archive.getinfo(BOMB_SHEET)
        assert sheet.file_size > 500 * len(data)
        assert sheet.file_size > 100 * 1024 * 1024
        assert "xl/workbook.xml" in archive.namelist()
        inflated = 0
        with archive.open(sheet) as stream:  # zipfile checks the CRC at the end
            head = stream.read(256)
            while chunk := stream.read(1 << 24):
                inflated += len(chunk)
                tail = chunk
    assert b"<worksheet" in head
    assert tail.endswith(b"</sheetData></worksheet>")
    assert inflated + len(head) == sheet.file_size


def test_xml_entity_sheet_declares_entities_that_a_safe_parser_refuses() -> None:
    with zipfile.ZipFile(io.BytesIO(INVALID_VARIANTS["xlsx_xml_entity"]()[1])) as archive:
        assert archive.testzip() is None
        sheet = archive.read(BOMB_SHEET)
    assert b'<!ENTITY xxe SYSTEM "file:///etc/passwd">' in sheet
    with pytest.raises(defusedxml.EntitiesForbidden):
        defusedxml.ElementTree.fromstring(sheet)


@pytest.mark.parametrize(
    "codec",
    ["utf-8", "utf-16", "utf-32", "cp1250", "cp1251", "cp1252", "shift_jis", "euc-jp", "gb18030", "big5", "euc-kr"],
)
def test_wrong_encoding_decodes_in_no_plausible_codec(codec: str) -> None:
    with pytest.raises(UnicodeDecodeError):
        INVALID_VARIANTS["wrong_encoding"]()[1].decode(codec)


def test_wrong_encoding_reads_as_c1_controls_in_latin1() -> None:
    text = INVALID_VARIANTS["wrong_encoding"]()[1].decode("latin-1")
    assert text.startswith("prompt,category\r\n")
    assert sum("\x80" <= char <= "\x9f" for char in text) >= 10


def test_nul_bytes_and_binary_csv() -> None:
    nul = INVALID_VARIANTS["nul_bytes"]()[1]
    assert nul.count(b"\x00") == 5
    assert nul.decode("utf-8").startswith("prompt,category,tags")
    binary = INVALID_VARIANTS["invalid_format"]()[1]
    assert binary.startswith(b"\x1f\x8b") and b"\x00" in binary
    with pytest.raises(UnicodeDecodeError):
        binary.decode("utf-8")


def test_committed_fixtures_match_the_generator(regenerated: Path) -> None:
    committed, fresh = tree(COMMITTED), tree(regenerated)
    hint = "regenerate with `batchqa gen --fixtures` (faker or openpyxl upgrades change the bytes too)"
    assert sorted(committed) == sorted(fresh), hint
    assert [name for name in fresh if fresh[name] != committed[name]] == [], hint


def test_manifest_lists_every_fixture_with_size_and_hash(regenerated: Path) -> None:
    manifest = json.loads((regenerated / "MANIFEST.json").read_text(encoding="utf-8"))
    files = tree(regenerated)
    listed = {entry["name"]: entry for entry in manifest["files"]}
    assert set(listed) == set(files) - {"MANIFEST.json", ".gitattributes"}
    for name, entry in listed.items():
        assert (entry["bytes"], entry["sha256"]) == (len(files[name]), hashlib.sha256(files[name]).hexdigest())
    expected = {"valid-10.csv", "valid-100.csv", "valid-1000.csv", "multi-column.csv", "unicode-mix.csv"}
    expected |= {"valid-10.xlsx", "valid-10.txt", "valid-10.json", "invalid-format.csv", "empty.csv"}
    expected |= {"too-many-1001.csv", "missing-column.csv"}
    expected |= {f"invalid/{v.filename}" for v in INVALID_VARIANTS.values() if v.name != "too_large"}
    assert set(listed) == expected
    assert [entry["bytes"] for entry in manifest["on_demand"]] == [MAX_UPLOAD_BYTES + 1]
    assert len(read_csv(files["multi-column.csv"], GenSpec())[0]) >= 5


def test_cli_writes_what_generate_returns(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    args = ["--rows", "5", "--delimiter", "tab", "--line-ending", "lf", "--mix", "cjk,emoji_zwj"]
    args += ["--locale", "ja_JP", "--encoding", "utf-16", "--seed", "7", "-o", str(out)]
    result = CliRunner().invoke(gen_command, args)
    assert result.exit_code == 0, result.output
    spec = GenSpec(rows=5, encoding="utf-16", delimiter="\t", line_ending="\n", mix=("cjk", "emoji_zwj"))
    assert out.read_bytes() == generate(replace(spec, locales=("ja_JP",), seed=7))


def test_cli_writes_to_stdout_and_shows_progress_for_1000_rows() -> None:
    result = CliRunner().invoke(gen_command, ["--rows", "1000", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == generate(GenSpec(rows=1000, fmt="jsonl"))
    assert "Generating 1000 rows" in result.stderr


def test_cli_writes_an_invalid_variant(tmp_path: Path) -> None:
    out = tmp_path / "image.xlsx"
    result = CliRunner().invoke(gen_command, ["--invalid", "png_as_xlsx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == INVALID_VARIANTS["png_as_xlsx"]()[1]


@pytest.mark.parametrize(
    "args",
    [["--mix", "klingon"], ["--encoding", "latin-9"], ["--invalid", "empty", "--fixtures", "x"]],
    ids=["unknown-mix", "unknown-encoding", "two-jobs"],
)
def test_cli_rejects_bad_usage(args: list[str]) -> None:
    assert CliRunner().invoke(gen_command, args).exit_code == 2


def test_cli_reports_text_the_encoding_cannot_hold() -> None:
    result = CliRunner().invoke(gen_command, ["--mix", "cjk", "--encoding", "cp1252"])
    assert result.exit_code == 1
    assert "no cp1252 form" in result.output
