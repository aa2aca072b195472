"""Per-row rules against a real server: a bad row fails with its reason, the batch runs; a bad paste is refused."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from utilities.client.api import BatchApi
from utilities.client.schemas import assert_matches_schema
from utilities.gen.hostile_corpus import ACCEPTED
from utilities.procs.backend import BackendProcess

from .helpers import csv_bytes

pytestmark = pytest.mark.area("Ingest")

PROVIDER_LIMIT = 32_000


def _rows(api: BatchApi, batch_id: str) -> list[dict[str, object]]:
    return json.loads(api.download(batch_id, "json"))["rows"]


def test_a_prompt_over_the_provider_limit_fails_alone_and_the_rest_runs(
    start_backend: Callable[..., BackendProcess],
) -> None:
    server = start_backend({"BATCHQA_MAX_PROMPT_CHARS": str(PROVIDER_LIMIT)})
    assert server.url is not None
    rows = [
        {"prompt": "Explain tides", "n": "1"},
        {"prompt": "y" * 40_000, "n": "2"},
        {"prompt": "Plan a trip", "n": "3"},
    ]
    with BatchApi.new_user(server.url, "limit") as api:
        accepted = api.upload(content=csv_bytes(rows), filename="long.csv")
        assert_matches_schema("upload_accepted", accepted)
        assert accepted["total"] == 3
        first = api.status(accepted["batch_id"])
        assert first["failed"] >= 1 and first["processed"] >= 1  # counted from the start, not when reached
        final = api.wait_until(accepted["batch_id"])
        assert (final["status"], final["succeeded"], final["failed"]) == ("completed_with_errors", 2, 1)
        downloaded = _rows(api, accepted["batch_id"])
    assert [row["status"] for row in downloaded] == ["succeeded", "failed", "succeeded"]
    assert downloaded[1]["fields"]["prompt"] == "y" * 40_000
    assert downloaded[1]["enhanced_prompt"] is None
    assert str(downloaded[1]["error"]).startswith(
        "prompt_too_long: Row 2 (line 3): the prompt is 40,000 characters long; "
        "this deployment's provider accepts at most 32,000."
    )


def test_an_empty_prompt_cell_fails_its_row_and_retry_leaves_it_failed(api: BatchApi) -> None:
    rows = [
        {"prompt": "Write a haiku", "owner": "ann"},
        {"prompt": "  ", "owner": "bob"},
        {"prompt": "Sum up", "owner": "cy"},
    ]
    accepted = api.upload(content=csv_bytes(rows), filename="gap.csv")
    assert accepted["total"] == 3
    final = api.wait_until(accepted["batch_id"])
    assert (final["status"], final["succeeded"], final["failed"]) == ("completed_with_errors", 2, 1)
    csv_text = api.download(accepted["batch_id"], "csv").decode("utf-8-sig")
    assert "empty_prompt: Row 2 (line 3): the prompt is empty; the row was not processed." in csv_text
    retried = api.retry(accepted["batch_id"])
    assert retried["status"] == "completed_with_errors"  # nothing retriable: it closes again at once
    assert [row["status"] for row in _rows(api, accepted["batch_id"])] == ["succeeded", "failed", "succeeded"]


def test_a_file_of_only_failing_rows_is_accepted_and_finishes_failed(api: BatchApi) -> None:
    entry = ACCEPTED["whitespace_prompts"]
    filename, data = entry()
    accepted = api.upload(content=data, filename=filename)
    final = api.wait_until(accepted["batch_id"], timeout=10)
    assert (final["status"], final["total"], final["failed"], final["processed"]) == ("failed", 3, 3, 3)
    assert {row["error"].split(":")[0] for row in _rows(api, accepted["batch_id"])} == {"empty_prompt"}


def _multipart_text(raw: bytes) -> tuple[bytes, str]:
    boundary = "batchqa-raw-paste"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n'.encode()
        + raw
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_pasted_text_that_is_not_utf8_is_422_naming_the_byte_offset(api: BatchApi, encoding: str) -> None:
    raw = "First prompt\nSecond – ok\n".encode() + b"Third \xff bad\n"
    offset = raw.index(b"\xff")
    if encoding == "multipart":
        body, content_type = _multipart_text(raw)
        response = api.http.post("/api/v1/batch/upload", content=body, headers={"Content-Type": content_type})
    else:
        body = b"text=" + b"".join(b"%%%02X" % byte for byte in raw)
        response = api.http.post(
            "/api/v1/batch/upload", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    assert response.status_code == 422, response.text
    error = response.json()
    assert_matches_schema("error", error)
    assert error["error"]["code"] == "encoding_error"
    assert (error["error"]["details"]["byte_offset"], error["error"]["details"]["line"]) == (offset, 3)
    assert f"byte {offset:,}" in error["error"]["message"]
    assert api.list_batches() == []


def test_pasted_utf8_is_kept_exactly_in_multipart_and_urlencoded_forms(api: BatchApi) -> None:
    text = "Übersetze „Käse“\n日本語で説明して 😀\n"
    body, content_type = _multipart_text(text.encode())
    raw = api.http.post("/api/v1/batch/upload", content=body, headers={"Content-Type": content_type})
    assert raw.status_code == 202, raw.text
    form = api.upload(text=text)
    for batch_id in (raw.json()["batch_id"], form["batch_id"]):
        api.wait_until(batch_id)
        assert [row["fields"]["prompt"] for row in _rows(api, batch_id)] == text.splitlines()


def test_a_malformed_multipart_body_is_a_400_in_the_error_format(api: BatchApi) -> None:
    response = api.http.post(
        "/api/v1/batch/upload",
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--x--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 400, response.text
    assert_matches_schema("error", response.json())
