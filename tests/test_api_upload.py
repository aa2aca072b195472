"""Upload validation against a real server: every spec case gets a specific error and queues nothing."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest

from utilities.client.api import BatchApi
from utilities.client.schemas import assert_matches_schema
from utilities.procs.backend import BackendProcess

from .helpers import csv_bytes, prompt_rows

UNICODE_PROMPTS = [
    "用三句话解释量子纠缠",
    "اكتب قصيدة قصيرة عن البحر",
    "Plan a family trip 👨‍👩‍👧‍👦 to the mountains",
    "Explain the word café vs cafe\u0301 (combining accent)",
    'Quote "this", escape \\ backslash, <b>html</b> & ampersand; semicolon, comma',
    "=SUM(A1:A2) should stay text, as should +1 and -1 and @mention",
]

INVALID_UPLOADS = [
    ("empty.csv", b"", 422, "empty_file"),
    ("header-only.csv", b"prompt,category\r\n", 422, "no_prompts"),
    ("too-many.csv", csv_bytes(prompt_rows(1001)), 422, "too_many_prompts"),
    ("corrupt.csv", b'prompt,category\r\nfine,ok\r\n"never closed,oops\r\nmore,rows\r\n', 422, "corrupt_csv"),
    ("no-prompt.csv", b"title,category\r\nhello,x\r\n", 422, "missing_prompt_column"),
    ("nul.csv", b"prompt\r\nbad\x00byte\r\n", 422, "invalid_characters"),
    ("picture.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, 415, "unsupported_file_type"),
]


def _assert_nothing_queued(api: BatchApi) -> None:
    assert api.list_batches() == []


@pytest.mark.parametrize(
    ("filename", "content", "status", "code"), INVALID_UPLOADS, ids=[case[0] for case in INVALID_UPLOADS]
)
def test_invalid_upload_gets_specific_error_and_queues_nothing(
    api: BatchApi, filename: str, content: bytes, status: int, code: str
) -> None:
    response = api.upload_raw(content=content, filename=filename)
    assert response.status_code == status, response.text
    body = response.json()
    assert_matches_schema("error", body)
    assert body["error"]["code"] == code
    _assert_nothing_queued(api)


def test_error_names_the_limit(api: BatchApi) -> None:
    too_many = api.upload_raw(content=csv_bytes(prompt_rows(1001)), filename="many.csv").json()["error"]
    assert (too_many["details"]["limit"], too_many["details"]["actual"]) == (1000, 1001)
    assert "1,000" in too_many["message"] or "1000" in too_many["message"]


def test_exactly_1000_prompts_are_accepted(api: BatchApi) -> None:
    accepted = api.upload(content=csv_bytes(prompt_rows(1000)), filename="thousand.csv")
    assert_matches_schema("upload_accepted", accepted)
    assert accepted["total"] == 1000


def test_file_over_10_mib_is_413(api: BatchApi) -> None:
    body = b"prompt\r\n" + (b"a" * 1000 + b"\r\n") * 10_486  # 10 MiB + a little, few rows
    assert len(body) > 10 * 1024 * 1024
    response = api.upload_raw(content=body, filename="big.csv")
    assert response.status_code == 413, response.text
    assert response.json()["error"]["details"]["limit"] == 10 * 1024 * 1024
    _assert_nothing_queued(api)


def test_oversized_upload_is_refused_before_the_body_is_read(api: BatchApi, backend: BackendProcess) -> None:
    """A client announcing 50 MB gets 413 at once; the server does not wait for (or read) the body."""
    url = urlsplit(backend.url)
    request = (
        "POST /api/v1/batch/upload HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\nAuthorization: Bearer {api.token}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 50000000\r\n\r\n"
        "--xyz\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=5) as conn:
        started = time.monotonic()
        conn.sendall(request)
        reply = ""
        while "file_too_large" not in reply and (chunk := conn.recv(4096)):
            reply += chunk.decode("latin-1")
        elapsed = time.monotonic() - started
    assert reply.startswith("HTTP/1.1 413"), reply
    assert "file_too_large" in reply
    assert elapsed < 2.0


def test_multiple_files_are_rejected(api: BatchApi) -> None:
    files = [("file", ("a.csv", csv_bytes(prompt_rows(2)))), ("file", ("b.csv", csv_bytes(prompt_rows(2))))]
    response = api.http.post("/api/v1/batch/upload", files=files)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "multiple_files"
    assert response.json()["error"]["details"]["count"] == 2
    _assert_nothing_queued(api)


def test_request_without_file_or_text_is_400(api: BatchApi) -> None:
    response = api.http.post("/api/v1/batch/upload", data={"other": "x"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "no_input")


def test_unicode_and_special_characters_round_trip_exactly(api: BatchApi) -> None:
    rows = [{"prompt": text, "category": "unicode", "tags": "ü,ß"} for text in UNICODE_PROMPTS]
    batch = api.upload(content=csv_bytes(rows), filename="unicode.csv")
    api.wait_until(batch["batch_id"])
    document = api.download(batch["batch_id"], "json")
    import json

    downloaded = json.loads(document)
    assert [r["fields"]["prompt"] for r in downloaded["rows"]] == UNICODE_PROMPTS
    assert all(r["status"] == "succeeded" for r in downloaded["rows"])


def test_very_long_prompt_is_processed(api: BatchApi) -> None:
    long_prompt = "Summarise this report. " + "The quarterly figures rose again. " * 3000  # ~100,000 chars
    batch = api.upload(content=csv_bytes([{"prompt": long_prompt}]), filename="long.csv")
    assert api.wait_until(batch["batch_id"])["status"] == "completed"


def test_multi_column_csv_keeps_every_column(api: BatchApi) -> None:
    rows = [
        {
            "Prompt": f"Draft an email about item {i}",
            "category": "business",
            "tags": "mail",
            "owner": "ann",
            "id": str(i),
        }
        for i in range(5)
    ]
    batch = api.upload(content=csv_bytes(rows), filename="multi.csv")
    assert batch["columns"] == ["Prompt", "category", "tags", "owner", "id"]


def test_pasted_text_makes_one_prompt_per_line(api: BatchApi) -> None:
    batch = api.upload(text="First prompt\n\nSecond prompt\r\nThird prompt\n")
    assert batch["total"] == 3
    assert batch["filename"] is None


def test_real_sample_file_uploads(api: BatchApi, real_prompts_csv) -> None:  # type: ignore[no-untyped-def]
    batch = api.upload(real_prompts_csv)
    assert batch["total"] == 175
    assert batch["columns"] == ["act", "prompt"]
