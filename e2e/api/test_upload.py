"""Uploads: every format, the limits on both sides of the line, the hostile corpus, and nothing queued on a refusal."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from utilities.check.contract_checks import assert_error
from utilities.client.api import BatchApi
from utilities.client.schemas import assert_matches_schema
from utilities.gen.hostile_corpus import corpus
from utilities.gen.hostile_file import HostileFile
from utilities.pytest_plugin import Target, registered_user

from ..payloads import csv_bytes, encode, marked_rows

FORMATS = ("csv", "xlsx", "txt", "json", "jsonl")


@pytest.fixture(scope="module")
def uploader(base_url: str) -> Iterator[BatchApi]:
    """One user for the module's refusals: each test compares the batch list before and after itself."""
    with registered_user(base_url, "upload") as user:
        yield user.api


def assert_refused_and_nothing_queued(
    api: BatchApi, send: Callable[[], object], status: int, code: str, *, promise: str
) -> dict:
    before = [b["batch_id"] for b in api.list_batches()]
    response = send()
    assert_error(response, status, code, promise=promise)  # type: ignore[arg-type]
    after = [b["batch_id"] for b in api.list_batches()]
    assert after == before, f"{promise}: a refused upload must queue nothing, but the list grew: {after} vs {before}"
    return response.json()["error"]  # type: ignore[attr-defined]


def accepted(api: BatchApi, filename: str, data: bytes) -> dict:
    response = api.upload_raw(content=data, filename=filename)
    assert response.status_code == 202, f"upload promise broken: {filename} refused: {response.text[:300]}"
    body = response.json()
    assert_matches_schema("upload_accepted", body)
    # Only the answer matters here; a running batch would take the target's workers from the other tests.
    api.action_raw(body["batch_id"], "cancel")
    return body


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_accepted_with_its_columns_and_rows(uploader: BatchApi, fmt: str) -> None:
    api = uploader
    data = marked_rows(4)
    filename, content = encode(data, fmt)
    body = api.upload(content=content, filename=filename)
    assert_matches_schema("upload_accepted", body)
    assert (body["status"], body["total"], body["filename"]) == ("queued", 4, filename), body
    if fmt != "txt":
        assert body["columns"] == data.columns, f"upload promise broken: columns {body['columns']} != {data.columns}"
    api.wait_until(body["batch_id"], timeout=60)
    rows = json.loads(api.download(body["batch_id"], "json"))["rows"]
    prompt_key = "prompt" if fmt == "txt" else None
    got = [row["fields"][prompt_key] if prompt_key else row["fields"] for row in rows]
    want = data.prompts if prompt_key else data.rows
    assert got == want, f"upload promise broken: the {fmt} file's rows came back different"


def test_pasted_text_makes_one_prompt_per_non_blank_line(uploader: BatchApi) -> None:
    body = uploader.upload(text="First prompt about tides\n\nSecond prompt about kelp\r\nThird prompt about gulls\n")
    assert (body["total"], body["filename"]) == (3, None), body


def test_prompt_count_limit_is_exact(uploader: BatchApi, target: Target) -> None:
    limit = target.profile.limit("max_prompts")
    for count in (limit - 1, limit):
        body = accepted(
            uploader, f"{count}.csv", b"prompt\r\n" + b"".join(f"p{i} ok\r\n".encode() for i in range(count))
        )
        assert body["total"] == count, f"limit promise broken: {count} prompts became a batch of {body['total']}"
    over = b"prompt\r\n" + b"".join(f"p{i} ok\r\n".encode() for i in range(limit + 1))
    error = assert_refused_and_nothing_queued(
        uploader,
        lambda: uploader.upload_raw(content=over, filename="over.csv"),
        422,
        "too_many_prompts",
        promise=f"limit promise broken: {limit + 1} prompts must be refused",
    )
    assert (error["details"].get("limit"), error["details"].get("actual")) == (limit, limit + 1), error


def _file_of_exactly(size: int, max_prompts: int, max_chars: int) -> bytes:
    """A valid CSV of exactly ``size`` bytes: as few prompts as fit under both prompt limits, padded at the end."""
    head = b"prompt\r\n"
    per_row = min(max_chars, max(10_000, -(-(size - len(head)) // max_prompts)))
    rows = -(-(size - len(head)) // (per_row + 2))
    assert rows <= max_prompts, f"cannot fill {size} bytes with {max_prompts} prompts of {max_chars} characters"
    body = bytearray(head)
    for i in range(rows):
        room = size - len(body) - 2
        body += (f"r{i} " + "x" * (min(per_row, room) - len(f"r{i} "))).encode() + b"\r\n"
    assert len(body) == size, (len(body), size)
    return bytes(body)


def test_upload_size_limit_is_exact(uploader: BatchApi, target: Target) -> None:
    limit = target.profile.limit("max_upload_bytes")
    prompts = target.profile.limit("max_prompts")
    chars = target.profile.optional_limit("max_prompt_chars") or 32_000
    for size in (limit - 1, limit):
        accepted(uploader, f"{size}.csv", _file_of_exactly(size, prompts, chars))
    error = assert_refused_and_nothing_queued(
        uploader,
        lambda: uploader.upload_raw(content=_file_of_exactly(limit + 1, prompts, chars), filename="big.csv"),
        413,
        "file_too_large",
        promise=f"limit promise broken: a file of {limit + 1} bytes must be refused",
    )
    assert error["details"].get("limit") == limit, error


def test_a_prompt_over_the_provider_limit_fails_its_row_and_the_rest_runs(uploader: BatchApi, target: Target) -> None:
    """No per-prompt limit by default; a target declaring one (max_prompt_chars) fails just that row, with a reason."""
    chars = target.profile.optional_limit("max_prompt_chars")
    long_prompt = ("Summarise this. " + "y" * 40_000)[: (chars or 40_000) + 1]
    rows = [{"prompt": "short one"}, {"prompt": long_prompt}, {"prompt": "short two"}]
    batch = uploader.upload(content=csv_bytes(rows), filename="long.csv")
    final = uploader.wait_until(batch["batch_id"], timeout=300)
    downloaded = json.loads(uploader.download(batch["batch_id"], "json"))["rows"]
    assert downloaded[1]["fields"]["prompt"] == long_prompt, "upload promise broken: the long prompt was altered"
    statuses = [row["status"] for row in downloaded]
    if chars is None:
        assert statuses == ["succeeded"] * 3, f"upload promise broken: a {len(long_prompt)}-character prompt {final}"
        return
    assert statuses == ["succeeded", "failed", "succeeded"], f"limit promise broken: {statuses}"
    assert downloaded[1]["error"], "error rows promise broken: the failed row carries no reason"


@pytest.mark.parametrize(
    ("name", "send", "status", "code"),
    [
        ("no input", lambda api: api.http.post("/api/v1/batch/upload", data={"other": "x"}), 400, "no_input"),
        (
            "two files",
            lambda api: api.http.post(
                "/api/v1/batch/upload",
                files=[("file", ("a.csv", b"prompt\r\none\r\n")), ("file", ("b.csv", b"prompt\r\ntwo\r\n"))],
            ),
            400,
            "multiple_files",
        ),
        (
            "a file and text",
            lambda api: api.http.post(
                "/api/v1/batch/upload", files={"file": ("a.csv", b"prompt\r\none\r\n")}, data={"text": "two"}
            ),
            400,
            "ambiguous_input",
        ),
        (
            "an exe",
            lambda api: api.upload_raw(content=b"prompt\r\nhi\r\n", filename="prompts.exe"),
            415,
            "unsupported_file_type",
        ),
        (
            "a reserved column",
            lambda api: api.upload_raw(content=b"prompt,row_status\r\nhi,x\r\n", filename="r.csv"),
            422,
            "reserved_column",
        ),
        (
            "no prompt column",
            lambda api: api.upload_raw(content=b"title\r\nhi\r\n", filename="t.csv"),
            422,
            "missing_prompt_column",
        ),
        ("header only", lambda api: api.upload_raw(content=b"prompt\r\n", filename="h.csv"), 422, "no_prompts"),
        ("empty file", lambda api: api.upload_raw(content=b"", filename="e.csv"), 422, "empty_file"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_malformed_request_gets_its_specific_error(
    uploader: BatchApi, name: str, send: Callable[[BatchApi], object], status: int, code: str
) -> None:
    assert_refused_and_nothing_queued(
        uploader, lambda: send(uploader), status, code, promise=f"upload error promise broken for {name}"
    )


@pytest.mark.parametrize("entry", corpus(), ids=lambda entry: entry.name)
def test_every_hostile_file_gets_its_specific_refusal_and_queues_nothing(
    uploader: BatchApi, entry: HostileFile
) -> None:
    filename, data = entry()
    assert_refused_and_nothing_queued(
        uploader,
        lambda: uploader.upload_raw(content=data, filename=filename),
        entry.status,
        entry.code,
        promise=f"hostile input promise broken: {entry.name} ({entry.description})",
    )


def test_an_announced_oversized_body_is_refused_before_it_is_sent(uploader: BatchApi, target: Target) -> None:
    """A client announcing far more than the limit gets 413 at once: the target neither waits for nor reads it."""
    url = urlsplit(target.base_url)
    announced = 5 * target.profile.limit("max_upload_bytes")
    request = (
        "POST /api/v1/batch/upload HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\nAuthorization: Bearer {uploader.token}\r\n"
        f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {announced}\r\n\r\n--xyz\r\n"
    ).encode()
    port = url.port or (443 if url.scheme == "https" else 80)
    if url.scheme == "https":
        pytest.skip("the raw-socket check speaks plain HTTP; this target is HTTPS")
    with socket.create_connection((url.hostname, port), timeout=10) as conn:
        conn.sendall(request)
        reply = b""
        while b"file_too_large" not in reply and (chunk := conn.recv(4096)):
            reply += chunk
    text = reply.decode("latin-1")
    assert text.startswith("HTTP/1.1 413") and "file_too_large" in text, (
        f"limit promise broken: an announced {announced}-byte upload was not refused at once: {text[:300]!r}"
    )
