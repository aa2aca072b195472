"""Rules before any parser runs: names and extensions, size, content that is another type, safe filenames."""

from __future__ import annotations

import pytest

from reference_backend.errors import ApiError, PayloadTooLarge, UnsupportedMediaType
from reference_backend.ingest import ALLOWED_EXTENSIONS, IngestLimits, parse_upload, safe_filename

pytestmark = pytest.mark.area("Ingest")

LIMITS = IngestLimits()
CSV = b"prompt\nhello\n"


def test_allowed_extensions_are_the_contracts() -> None:
    assert frozenset({".csv", ".xlsx", ".txt", ".json", ".jsonl"}) == ALLOWED_EXTENSIONS


@pytest.mark.parametrize(
    "name",
    [
        "prompts.csv",
        "PROMPTS.CSV",
        "x.csv%20",
        "my%2Ecsv",
        "ｐｒｏｍｐｔｓ．ｃｓｖ",
        "C:\\Users\\me\\x.csv",
        "x.exe.csv",
    ],
    ids=[
        "plain",
        "upper-case",
        "trailing-encoded-space",
        "percent-encoded-dot",
        "fullwidth",
        "windows-path",
        "exe-csv",
    ],
)
def test_allowed_names_are_parsed(name: str) -> None:
    assert parse_upload(name, CSV, LIMITS).rows == [{"prompt": "hello"}]


@pytest.mark.parametrize(
    ("name", "extension"),
    [
        ("x.csv.exe", ".exe"),
        ("x.csv%2Eexe", ".exe"),
        ("x%00.csv.sh", ".sh"),
        ("invoice\u202evsc.exe", ".exe"),
        ("prompts", ""),
        ("prompts.xls", ".xls"),
        ("../../etc/passwd", ""),
    ],
    ids=["double-extension", "percent-encoded", "nul", "rtl-override", "no-extension", "old-xls", "path"],
)
def test_disallowed_extensions_are_415(name: str, extension: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse_upload(name, CSV, LIMITS)
    assert caught.value.status == 415
    assert caught.value.code == "unsupported_file_type"
    assert caught.value.details["extension"] == extension


def test_file_over_max_bytes_is_413_with_limit_and_actual() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        parse_upload("big.csv", b"prompt\n" + b"x" * 100, IngestLimits(max_bytes=100))
    assert (caught.value.status, caught.value.code) == (413, "file_too_large")
    assert caught.value.details == {"filename": "big.csv", "limit": 100, "actual": 107}


def test_file_at_max_bytes_is_accepted() -> None:
    assert parse_upload("ok.csv", CSV, IngestLimits(max_bytes=len(CSV))).rows == [{"prompt": "hello"}]


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "a PNG image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (b"PK\x03\x04" + bytes(64), "a ZIP archive"),
        (b"\xff\xd8\xff\xe0" + bytes(64), "a JPEG image"),
    ],
    ids=["png", "pdf", "zip", "jpeg"],
)
@pytest.mark.parametrize("name", ["data.csv", "data.txt", "data.json"])
def test_binary_content_under_a_text_extension_is_415(name: str, data: bytes, detected: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse_upload(name, data, LIMITS)
    assert caught.value.details["detected"] == detected
    assert caught.value.details["filename"] == name


def test_every_content_error_carries_the_sanitised_filename() -> None:
    with pytest.raises(ApiError) as caught:
        parse_upload("dir/sub/bad\x07name.csv", b"prompt,act\n", LIMITS)
    assert caught.value.code == "no_prompts"
    assert caught.value.details["filename"] == "badname.csv"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.csv", "report.csv"),
        ("/etc/passwd.csv", "passwd.csv"),
        ("..\\..\\win.ini.txt", "win.ini.txt"),
        ("line\r\nbreak\t.csv", "linebreak.csv"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ('quote"semi;colon<>.csv', "quote_semi_colon__.csv"),
        ("my%20prompts.csv", "my prompts.csv"),
        ("", "upload"),
        ("...", "upload"),
        ("/", "upload"),
        (".csv", "upload.csv"),
        ("trailing.csv. ", "trailing.csv"),
    ],
    ids=[
        "plain",
        "posix-path",
        "windows-path",
        "controls",
        "bidi",
        "awkward-chars",
        "percent",
        "empty",
        "dots",
        "slash",
        "extension-only",
        "trailing-dot",
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_safe_filename_truncates_to_120_characters_and_keeps_the_extension() -> None:
    result = safe_filename("長" * 300 + ".xlsx")
    assert len(result) == 120
    assert result.endswith("長.xlsx")
