"""The download validator accepts honest CSV/JSON/ZIP downloads and names the row of every tampering."""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import zipfile

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from utilities.check.download_comparison import compare_downloads
from utilities.check.download_reader import load_download
from utilities.check.download_validator import assert_download_matches, validate
from utilities.check.input_reader import InputTable
from utilities.check.validate_cli import validate_command

pytestmark = pytest.mark.area("Downloads")

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS_AFTER = ["enhanced_prompt", "techniques", "row_status", "row_error"]


def make_table(prompts: list[str], categories: list[str] | None = None) -> InputTable:
    categories = categories or [f"cat-{n}" for n in range(1, len(prompts) + 1)]
    rows = [{"prompt": p, "category": c} for p, c in zip(prompts, categories, strict=True)]
    return InputTable(["prompt", "category"], "prompt", rows, "csv", "input.csv")


def results_for(table: InputTable, failed: tuple[int, ...] = ()) -> list[dict]:
    """What an honest target would report: row N failed when N is in ``failed``, else enhanced."""
    records = []
    for number, row in enumerate(table.rows, start=1):
        ok = number not in failed
        records.append(
            {
                "row_number": number,
                "fields": dict(row),
                "enhanced_prompt": f"Act as an expert. {row[table.prompt_column]}" if ok else None,
                "techniques": ["role", "constraints"] if ok else [],
                "status": "succeeded" if ok else "failed",
                "error": None if ok else "provider timeout",
            }
        )
    return records


def render_csv(table: InputTable, records: list[dict], *, neutralise: bool = True) -> bytes:
    """The contract's CSV: BOM, CRLF, reserved columns around the originals, formula cells prefixed."""

    def cell(text: str) -> str:
        return "'" + text if neutralise and text.startswith(FORMULA_STARTS) else text

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([cell(name) for name in ["row_number", *table.columns, *CSV_COLUMNS_AFTER]])
    for record in records:
        writer.writerow(
            [
                str(record["row_number"]),
                *(cell(record["fields"][name]) for name in table.columns),
                cell(record["enhanced_prompt"] or ""),
                cell("; ".join(record["techniques"])),
                record["status"],
                cell(record["error"] or ""),
            ]
        )
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def render_json(table: InputTable, records: list[dict], status: str = "completed_with_errors") -> bytes:
    body = {"batch_id": "b-1", "status": status, "total": len(records), "columns": table.columns}
    return json.dumps({**body, "rows": records}, ensure_ascii=False).encode("utf-8")


def render_zip(
    table: InputTable,
    records: list[dict],
    *,
    manifest_edit: dict | None = None,
    csv_records: list | None = None,
) -> bytes:
    members = {
        "results.csv": render_csv(table, records if csv_records is None else csv_records),
        "results.json": render_json(table, records),
    }
    manifest = {
        "batch_id": "b-1",
        "status": "completed_with_errors",
        "total": len(records),
        "succeeded": sum(r["status"] == "succeeded" for r in records),
        "failed": sum(r["status"] == "failed" for r in records),
        "files": [
            {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in members.items()
        ],
    }
    manifest.update(manifest_edit or {})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in [*members.items(), ("manifest.json", json.dumps(manifest).encode())]:
            archive.writestr(name, data)
    return out.getvalue()


RENDERERS = {"csv": render_csv, "json": render_json, "zip": render_zip}


def problems_for(table: InputTable, records: list[dict], fmt: str) -> list[str]:
    return validate(table, load_download(RENDERERS[fmt](table, records), fmt)).problems()


@pytest.fixture
def table() -> InputTable:
    prompts = ["Write a haiku", '=HYPERLINK("http://x")', "Summarise: ünïcödé ✓", "-5 degrees", "Plan a trip"]
    return make_table(prompts, ["poetry", "@risk", "'=already quoted", "\tindented", "travel"])


@pytest.fixture
def records(table: InputTable) -> list[dict]:
    return results_for(table, failed=(3,))


@pytest.mark.parametrize("fmt", ["csv", "json", "zip"])
def test_honest_download_validates_clean(table, records, fmt):
    download = load_download(RENDERERS[fmt](table, records), fmt)
    report = validate(table, download)
    assert report.problems() == []
    assert (report.rows_checked, report.succeeded, report.failed) == (5, 4, 1)
    assert report.summary().endswith(": OK")
    assert_download_matches(table, download)


def test_csv_cells_are_unneutralised_and_remembered(table, records):
    download = load_download(render_csv(table, records), "csv")
    assert [row.fields["prompt"] for row in download.rows] == table.prompts
    assert download.rows[1].neutralised == {"prompt", "category"}
    assert download.rows[2].fields["category"] == "=already quoted"  # the contract's one ambiguous reading
    assert download.rows[0].techniques == ["role", "constraints"]


@pytest.mark.parametrize("fmt", ["csv", "json", "zip"])
def test_swapped_rows_are_reported_as_reordered(table, records, fmt):
    records[1], records[3] = records[3], records[1]
    problems = problems_for(table, records, fmt)
    assert any("out of input order" in p for p in problems)
    assert any(p.endswith("row 2: holds input row 4's content, out of input order") for p in problems)
    assert any("row 4: holds input row 2's content" in p for p in problems)
    assert any("row 2: row_number is 4, expected 2" in p for p in problems)
    assert not any("is missing" in p for p in problems)


@pytest.mark.parametrize("fmt", ["csv", "json", "zip"])
def test_dropped_row_is_reported_missing_not_as_a_cascade(table, records, fmt):
    del records[2]
    for later in records[2:]:
        later["row_number"] -= 1
    problems = problems_for(table, records, fmt)
    assert any("the download has 4 rows, the input has 5" in p for p in problems)
    assert any("row 3: input row 3 ('Summarise: ünïcödé ✓') is missing" in p for p in problems)
    assert not any("field" in p for p in problems)


@pytest.mark.parametrize("fmt", ["csv", "json", "zip"])
def test_altered_field_names_row_and_both_values(table, records, fmt):
    records[4]["fields"]["category"] = "holiday"
    problems = problems_for(table, records, fmt)
    assert any("row 5: field 'category' is 'holiday' in the download, 'travel' in the input" in p for p in problems)


@pytest.mark.parametrize("fmt", ["csv", "json", "zip"])
def test_altered_prompt_is_reported(table, records, fmt):
    records[0]["fields"]["prompt"] = "Write a sonnet"
    problems = problems_for(table, records, fmt)
    assert any("row 1: field 'prompt' is 'Write a sonnet' in the download" in p for p in problems)


def test_json_must_round_trip_text_byte_for_byte(table, records):
    records[0]["fields"]["prompt"] = "Write a haiku "
    records[2]["fields"]["prompt"] = records[2]["fields"]["prompt"].replace("ü", "u\u0308")
    problems = problems_for(table, records, "json")
    assert any(p.startswith("row 1:") and "whitespace" in p for p in problems)
    assert any(p.startswith("row 3:") and "Unicode normalisation" in p for p in problems)


@pytest.mark.parametrize("fmt", ["csv", "json", "zip"])
def test_failed_row_without_error_is_reported(table, records, fmt):
    records[2]["error"] = None
    problems = problems_for(table, records, fmt)
    assert any("row 3: failed but carries no error message" in p for p in problems)


@pytest.mark.parametrize("fmt", ["csv", "json", "zip"])
def test_succeeded_row_without_enhanced_prompt_is_reported(table, records, fmt):
    records[3]["enhanced_prompt"] = ""
    problems = problems_for(table, records, fmt)
    assert any("row 4: succeeded but its enhanced prompt is empty" in p for p in problems)


def test_enhanced_prompt_need_not_contain_the_original(table, records):
    for record in records:
        if record["enhanced_prompt"]:
            record["enhanced_prompt"] = "Completely rewritten."
    assert problems_for(table, records, "json") == []


def test_unknown_row_status_is_reported(table, records):
    records[0]["status"] = "done"
    assert any("row 1: status 'done' is not one of" in p for p in problems_for(table, records, "json"))


def test_pending_rows_in_a_completed_batch_are_reported_even_when_allowed(table, records):
    records[4].update(status="pending", enhanced_prompt=None, techniques=[])
    download = load_download(render_json(table, records, status="completed"), "json")
    assert "row 5: still pending in a download of a completed batch" in validate(table, download).problems()
    assert not validate(table, download, allow_pending=True).ok


def test_pending_rows_need_allow_pending_when_the_batch_status_is_unknown(table, records):
    records[4].update(status="running", enhanced_prompt=None, techniques=[])
    download = load_download(render_csv(table, records), "csv")
    assert any("row 5: still running" in p for p in validate(table, download).problems())
    assert validate(table, download, allow_pending=True).ok
    paused = load_download(render_json(table, records, status="paused"), "json")
    assert validate(table, paused).ok


def test_unneutralised_formula_cell_in_csv_is_reported(table, records):
    download = load_download(render_csv(table, records, neutralise=False), "csv")
    problems = validate(table, download).problems()
    assert any("row 2: cell 'category' starts with '@' but lacks the leading \"'\"" in p for p in problems)
    assert any("row 2: cell 'prompt' starts with '='" in p for p in problems)
    assert any("row 4: cell 'category' starts with '\\t'" in p for p in problems)


def test_csv_without_bom_or_crlf_is_reported(table, records):
    data = render_csv(table, records).removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n")
    problems = validate(table, load_download(data, "csv")).problems()
    assert "the CSV does not start with a UTF-8 BOM" in problems
    assert "the CSV ends records with a bare LF, not CRLF" in problems


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_missing_and_extra_columns_are_reported(table, records, fmt):
    for record in records:
        record["fields"]["topic"] = record["fields"].pop("category")
    renamed = InputTable(["prompt", "topic"], "prompt", [r["fields"] for r in records])
    problems = validate(table, load_download(RENDERERS[fmt](renamed, records), fmt)).problems()
    assert problems == [
        "column 'category' of the input is missing from the download",
        "column 'topic' is in the download but not in the input",
    ]


def test_bad_manifest_checksum_is_reported(table, records):
    data = render_zip(
        table,
        records,
        manifest_edit={
            "files": [
                {"name": "results.csv", "bytes": 1, "sha256": "0" * 64},
                {"name": "results.json", "bytes": len(render_json(table, records)), "sha256": "0" * 64},
            ]
        },
    )
    problems = validate(table, load_download(data, "zip")).problems()
    assert any(p.startswith("manifest.json: results.csv has") and "the manifest says 1" in p for p in problems)
    assert any(p.startswith("manifest.json: sha256 of results.json is") for p in problems)


def test_manifest_counts_must_agree_with_rows(table, records):
    data = render_zip(table, records, manifest_edit={"failed": 0, "succeeded": 5})
    problems = validate(table, load_download(data, "zip")).problems()
    assert "manifest.json: failed is 0, the rows say 1" in problems
    assert "manifest.json: succeeded is 5, the rows say 4" in problems


def test_corrupted_zip_member_fails_crc_check(table, records):
    data = bytearray(render_zip(table, records))
    at = data.index(b"Plan a trip")
    data[at] ^= 0x20  # "plan a trip": still valid JSON, but the CRC-32 no longer matches
    problems = validate(table, load_download(bytes(data), "zip")).problems()
    assert any("fails its CRC check" in p and "results.csv" in p for p in problems)
    assert any(p.startswith("results.csv: cannot be extracted intact") for p in problems)


def test_zip_missing_a_member_is_reported(table, records):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("results.json", render_json(table, records))
    problems = validate(table, load_download(out.getvalue(), "zip")).problems()
    assert "results.csv is missing from the archive" in problems
    assert "manifest.json is missing from the archive" in problems


def test_csv_json_and_zip_of_one_batch_are_equivalent(table, records):
    downloads = [load_download(RENDERERS[fmt](table, records), fmt) for fmt in ("csv", "json", "zip")]
    for one in downloads:
        for other in downloads:
            assert compare_downloads(one, other).problems() == []


def test_mismatch_between_csv_and_json_is_reported(table, records):
    as_json = load_download(render_json(table, records), "json")
    records[1]["enhanced_prompt"] = "something else"
    records[2]["error"] = "rate limited"
    report = compare_downloads(load_download(render_csv(table, records), "csv"), as_json)
    assert not report.ok
    assert any(p.startswith("row 2: enhanced_prompt is 'something else' in csv") for p in report.problems())
    assert "row 3: error is 'rate limited' in csv, 'provider timeout' in json" in report.problems()


def test_zip_whose_csv_and_json_disagree_is_reported(table, records):
    csv_records = copy.deepcopy(records)
    csv_records[4]["techniques"] = ["role"]
    data = render_zip(table, records, csv_records=csv_records)
    problems = validate(table, load_download(data, "zip")).problems()
    assert problems == ["results.csv vs results.json: row 5: techniques is 'role' in csv, 'role; constraints' in json"]


def test_assert_download_matches_lists_the_problems(table, records):
    records[0]["error"] = "x"
    records[0]["status"] = "failed"
    records[2]["error"] = ""
    with pytest.raises(AssertionError, match="row 3: failed but carries no error message"):
        assert_download_matches(table, load_download(render_json(table, records), "json"))


def test_problem_lists_are_capped_per_check():
    table = make_table([f"prompt {n}" for n in range(1, 51)])
    records = results_for(table)
    for record in records:
        record["fields"]["category"] = "changed"
    problems = problems_for(table, records, "json")
    assert len(problems) == 21
    assert problems[-1] == "... and 30 more row differences"


def test_cli_exits_zero_when_clean_and_one_with_problems(tmp_path, table, records):
    (tmp_path / "input.csv").write_text(
        "prompt,category\n" + "".join(f'"{r["prompt"]}",{r["category"]}\n' for r in [table.rows[0], table.rows[4]])
    )
    small = make_table([table.rows[0]["prompt"], table.rows[4]["prompt"]], ["poetry", "travel"])
    good = results_for(small)
    (tmp_path / "good.zip").write_bytes(render_zip(small, good))
    good[1]["fields"]["category"] = "holiday"
    (tmp_path / "bad.json").write_bytes(render_json(small, good))
    runner = CliRunner()

    clean = runner.invoke(validate_command, [str(tmp_path / "input.csv"), str(tmp_path / "good.zip")])
    assert clean.exit_code == 0, clean.output
    assert "zip download: 2 rows checked against 2 input rows" in clean.output

    dirty = runner.invoke(
        validate_command, [str(tmp_path / "input.csv"), str(tmp_path / "bad.json"), "--format", "json"]
    )
    assert dirty.exit_code == 1
    assert "  - row 2: field 'category' is 'holiday' in the download, 'travel' in the input" in dirty.output


def test_cli_allow_pending_accepts_an_unfinished_csv(tmp_path, table, records):
    (tmp_path / "input.json").write_text(json.dumps(table.rows))
    records[4].update(status="pending", enhanced_prompt=None, techniques=[])
    (tmp_path / "partial.csv").write_bytes(render_csv(table, records))
    args = [str(tmp_path / "input.json"), str(tmp_path / "partial.csv")]
    runner = CliRunner()

    strict = runner.invoke(validate_command, args)
    assert strict.exit_code == 1
    assert "row 5: still pending in a download of a finished batch" in strict.output
    assert runner.invoke(validate_command, [*args, "--allow-pending"]).exit_code == 0


cell_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@st.composite
def batches(draw: st.DrawFn) -> tuple[InputTable, list[dict]]:
    size = draw(st.integers(min_value=1, max_value=8))
    prompts = draw(st.lists(cell_text, min_size=size, max_size=size))
    categories = draw(st.lists(cell_text, min_size=size, max_size=size))
    failed = draw(st.sets(st.integers(min_value=1, max_value=size)))
    table = make_table(prompts, categories)
    return table, results_for(table, tuple(failed))


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(batches())
def test_property_honest_downloads_validate_in_every_format(batch):
    table, records = batch
    downloads = {fmt: load_download(render(table, records), fmt) for fmt, render in RENDERERS.items()}
    for fmt, download in downloads.items():
        assert validate(table, download).problems() == [], fmt
    assert compare_downloads(downloads["csv"], downloads["json"]).ok


@PROPERTY_SETTINGS
@given(batches(), st.sampled_from(["swap", "drop", "alter", "clear_error"]), st.data())
def test_property_any_single_tampering_is_rejected(batch, tampering, data):
    table, records = batch
    tampered = copy.deepcopy(records)
    if tampering == "swap":
        assume(len(records) >= 2)
        i, j = data.draw(st.lists(st.integers(0, len(records) - 1), min_size=2, max_size=2, unique=True))
        assume(records[i]["fields"] != records[j]["fields"])
        tampered[i]["fields"], tampered[j]["fields"] = tampered[j]["fields"], tampered[i]["fields"]
    elif tampering == "drop":
        del tampered[data.draw(st.integers(0, len(records) - 1))]
    elif tampering == "alter":
        i = data.draw(st.integers(0, len(records) - 1))
        name = data.draw(st.sampled_from(table.columns))
        tampered[i]["fields"][name] = data.draw(cell_text.filter(lambda t: t != records[i]["fields"][name]))
    else:
        failed = [i for i, record in enumerate(records) if record["status"] == "failed"]
        assume(failed)
        tampered[data.draw(st.sampled_from(failed))]["error"] = data.draw(st.sampled_from([None, "", " "]))
    csv_blind = _csv_reads_alike(records, tampered)
    for fmt, render in RENDERERS.items():
        report = validate(table, load_download(render(table, tampered), fmt))
        assert report.ok is (fmt == "csv" and csv_blind), (fmt, report.problems())


def _csv_reads_alike(records: list[dict], tampered: list[dict]) -> bool:
    """CSV cannot tell the text '=x from a neutralised =x (see unneutralise); the JSON must tell."""

    def shown(record: dict) -> list[str]:
        cells = [*record["fields"].values(), record["error"] or ""]
        return [c[1:] if c.startswith("'") and c[1:].startswith(FORMULA_STARTS) else c for c in cells]

    return [shown(r) for r in records] == [shown(r) for r in tampered]
