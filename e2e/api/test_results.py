"""Results: input order, every original field, each enhanced prompt made from its own prompt, failures marked,
the three formats agreeing row for row, CSV neutralisation, the ZIP's checksums, and exact text."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from utilities.check.contract_checks import assert_rows_agree, own_prompt_problems
from utilities.check.download_comparison import assert_downloads_equivalent
from utilities.check.download_reader import load_download
from utilities.check.download_validator import assert_download_matches
from utilities.check.input_reader import read_input
from utilities.client.api import BatchApi
from utilities.client.schemas import assert_matches_schema
from utilities.pytest_plugin import Target

from ..payloads import csv_bytes, marked_rows

FORMATS = ("csv", "json", "zip")


def finished(api: BatchApi, content: bytes, filename: str) -> tuple[str, dict]:
    batch = api.upload(content=content, filename=filename)["batch_id"]
    return batch, api.wait_until(batch, timeout=60)


@pytest.mark.parametrize("prompt_first", [False, True], ids=["prompt-column-third", "prompt-column-first"])
def test_every_format_keeps_input_order_every_field_and_each_rows_own_prompt(
    shared_api: BatchApi, prompt_first: bool
) -> None:
    data = marked_rows(12, prompt_first=prompt_first)
    content = csv_bytes(data.rows, data.columns)
    batch, final = finished(shared_api, content, "marked.csv")
    assert final["status"] == "completed", final
    table = read_input(content, "marked.csv")
    downloads = {fmt: load_download(shared_api.download(batch, fmt), fmt) for fmt in FORMATS}
    for download in downloads.values():
        assert_download_matches(table, download)
    assert_downloads_equivalent(downloads["csv"], downloads["json"])
    assert_downloads_equivalent(downloads["zip"], downloads["json"])
    document = json.loads(shared_api.download(batch, "json"))
    assert_matches_schema("download_json", document)
    assert document["columns"] == data.columns, f"field promise broken: columns {document['columns']}"
    problems = own_prompt_problems(document["rows"], data.markers)
    assert not problems, "\n".join(problems)
    assert_rows_agree(final, document["rows"])


def test_failed_rows_are_marked_with_their_reason_in_every_format(shared_api: BatchApi, target: Target) -> None:
    target.require("failing_prompts")
    data = marked_rows(5)
    prompts = [target.profile.failing_prompt if i in (1, 3) else p for i, p in enumerate(data.prompts)]
    batch = shared_api.upload(text="\n".join(prompts))["batch_id"]
    final = shared_api.wait_until(batch, timeout=60)
    assert (final["status"], final["succeeded"], final["failed"]) == ("completed_with_errors", 3, 2), (
        f"error marking promise broken: 2 failing prompts of 5 gave {final}"
    )
    for fmt in FORMATS:
        download = load_download(shared_api.download(batch, fmt), fmt)
        rows = download.rows
        marked = [
            (i, row.status, bool((row.error or "").strip()), bool(row.enhanced_prompt)) for i, row in enumerate(rows, 1)
        ]
        expected = [(i, "failed", True, False) if i in (2, 4) else (i, "succeeded", False, True) for i in range(1, 6)]
        assert marked == expected, (
            f"error marking promise broken in {fmt}: (row, status, has reason, has result) {marked}"
        )
        assert [row.fields["prompt"] for row in rows] == prompts, f"field promise broken in {fmt}"
    assert_rows_agree(final, json.loads(shared_api.download(batch, "json"))["rows"])


def test_csv_neutralises_formula_cells_and_json_keeps_the_exact_text(shared_api: BatchApi) -> None:
    dangerous = ["=1+1 tides", "+SUM(A1) kelp", "-2+3 gulls", "@cmd crabs", "\tlead tab shells"]
    rows = [{"prompt": p, "category": '=HYPERLINK("x")'} for p in dangerous]
    batch, _ = finished(shared_api, csv_bytes(rows), "formulas.csv")
    raw = shared_api.download(batch, "csv")
    download = load_download(raw, "csv")
    for row, original in zip(download.rows, dangerous, strict=True):
        assert {"prompt", "category"} <= set(row.neutralised), (
            f"CSV neutralisation promise broken: {original!r} reached the CSV without a leading quote"
        )
        assert row.fields["prompt"] == original
    document = json.loads(shared_api.download(batch, "json"))
    assert [r["fields"]["prompt"] for r in document["rows"]] == dangerous, "JSON must keep the exact text"
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw, "the CSV is UTF-8 with a BOM and CRLF line ends"


def test_zip_holds_the_three_files_and_its_manifest_checksums_are_right(shared_api: BatchApi) -> None:
    data = marked_rows(6)
    batch, final = finished(shared_api, csv_bytes(data.rows, data.columns), "zipped.csv")
    archive = zipfile.ZipFile(io.BytesIO(shared_api.download(batch, "zip")))
    assert archive.testzip() is None
    names = set(archive.namelist())
    assert {"results.csv", "results.json", "manifest.json"} <= names, f"ZIP promise broken: it holds {sorted(names)}"
    manifest = json.loads(archive.read("manifest.json"))
    assert_matches_schema("zip_manifest", manifest)
    for entry in manifest["files"]:
        content = archive.read(entry["name"])
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], (
            f"manifest promise broken: sha256 of {entry['name']}"
        )
        assert len(content) == entry["bytes"], f"manifest promise broken: size of {entry['name']}"
    assert {e["name"] for e in manifest["files"]} >= {"results.csv", "results.json"}
    assert (manifest["total"], manifest["succeeded"], manifest["failed"]) == (
        final["total"],
        final["succeeded"],
        final["failed"],
    ), f"manifest promise broken: counts {manifest} vs status {final}"
    assert json.loads(archive.read("results.json")) == json.loads(shared_api.download(batch, "json"))


def test_multi_line_and_non_ascii_prompts_come_back_exactly(shared_api: BatchApi) -> None:
    prompts = [
        "Line one about tides\nline two about kelp\r\nline three",
        "用三句话解释量子纠缠",
        "اكتب قصيدة قصيرة عن البحر",
        "Plan a family trip 👨‍👩‍👧‍👦 to the mountains",
        "café vs cafe\u0301 (combining accent), naïve façade",
        'Quote "this", escape \\ backslash, <b>html</b> & ampersand; semicolon, comma',
    ]
    rows = [{"prompt": p, "note": f"ü-{i}-ß"} for i, p in enumerate(prompts)]
    content = csv_bytes(rows)
    batch, final = finished(shared_api, content, "unicode.csv")
    assert final["status"] == "completed", final
    document = json.loads(shared_api.download(batch, "json"))
    assert [r["fields"] for r in document["rows"]] == rows, "encoding promise broken: fields changed in JSON"
    csv_rows = load_download(shared_api.download(batch, "csv"), "csv").rows
    assert [r.fields["prompt"] for r in csv_rows] == prompts, "encoding promise broken: prompts changed in CSV"
    assert [r.fields["note"] for r in csv_rows] == [r["note"] for r in rows]
