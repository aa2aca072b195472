"""Processing, control and downloads against a real server, checked against the contract's schemas."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Callable

import httpx
import pytest

from utilities.client.api import ApiFailure, BatchApi
from utilities.client.schemas import assert_matches_schema
from utilities.procs.backend import BackendProcess

from .helpers import csv_bytes, prompt_rows

OTHER_BATCH_ENDPOINTS = [
    ("GET", "/api/v1/batch/status/{id}"),
    ("GET", "/api/v1/batch/download/{id}?format=csv"),
    ("GET", "/api/v1/batch/download/{id}?format=json"),
    ("GET", "/api/v1/batch/download/{id}?format=zip"),
    ("POST", "/api/v1/batch/{id}/pause"),
    ("POST", "/api/v1/batch/{id}/resume"),
    ("POST", "/api/v1/batch/{id}/cancel"),
    ("POST", "/api/v1/batch/{id}/retry"),
]


def _csv_records(payload: bytes) -> list[dict[str, str]]:
    assert payload.startswith(b"\xef\xbb\xbf"), "CSV download should start with a UTF-8 BOM for Excel"
    return list(csv.DictReader(io.StringIO(payload.decode("utf-8-sig"), newline="")))


def test_ten_prompts_complete_and_download_in_order_in_every_format(api: BatchApi) -> None:
    rows = prompt_rows(10)
    batch = api.upload(content=csv_bytes(rows), filename="ten prompts.csv")
    final = api.wait_until(batch["batch_id"])
    assert_matches_schema("batch_status", final)
    assert (final["status"], final["processed"], final["succeeded"], final["failed"]) == (
        "completed",
        10,
        10,
        0,
    )
    assert final["percent"] == 100.0
    assert final["finished_at"] and final["started_at"]

    document = json.loads(api.download(batch["batch_id"], "json"))
    assert_matches_schema("download_json", document)
    assert [r["row_number"] for r in document["rows"]] == list(range(1, 11))
    assert [r["fields"] for r in document["rows"]] == rows
    for record in document["rows"]:
        assert record["status"] == "succeeded" and record["error"] is None
        assert record["fields"]["prompt"] in record["enhanced_prompt"]
        assert record["techniques"], "every enhanced row names the techniques applied"

    response = api.download_raw(batch["batch_id"], "csv")
    assert 'filename="ten-prompts-results.csv"' in response.headers["content-disposition"] or (
        "results.csv" in response.headers["content-disposition"]
    )
    records = _csv_records(response.content)
    assert [r["prompt"] for r in records] == [r["prompt"] for r in rows]
    assert list(records[0]) == [
        "row_number",
        "prompt",
        "category",
        "tags",
        "enhanced_prompt",
        "techniques",
        "row_status",
        "row_error",
    ]

    archive = zipfile.ZipFile(io.BytesIO(api.download(batch["batch_id"], "zip")))
    assert archive.testzip() is None
    manifest = json.loads(archive.read("manifest.json"))
    assert_matches_schema("zip_manifest", manifest)
    for entry in manifest["files"]:
        assert hashlib.sha256(archive.read(entry["name"])).hexdigest() == entry["sha256"]
    assert json.loads(archive.read("results.json")) == document


def test_csv_download_neutralises_formula_cells_and_json_keeps_them(api: BatchApi) -> None:
    dangerous = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tlead tab"]
    batch = api.upload(content=csv_bytes([{"prompt": p, "category": "=evil()"} for p in dangerous]), filename="f.csv")
    api.wait_until(batch["batch_id"])
    records = _csv_records(api.download(batch["batch_id"], "csv"))
    assert [r["prompt"] for r in records] == ["'" + p for p in dangerous]
    assert all(r["category"] == "'=evil()" for r in records)
    document = json.loads(api.download(batch["batch_id"], "json"))
    assert [r["fields"]["prompt"] for r in document["rows"]] == dangerous


def test_prompts_without_words_fail_with_a_reason_and_the_batch_reports_errors(api: BatchApi) -> None:
    batch = api.upload(text="Explain photosynthesis to a child\n!!! ???\nPlan a week of meals\n")
    final = api.wait_until(batch["batch_id"])
    assert (final["status"], final["succeeded"], final["failed"]) == ("completed_with_errors", 2, 1)
    rows = json.loads(api.download(batch["batch_id"], "json"))["rows"]
    assert rows[1]["status"] == "failed"
    assert rows[1]["error"] and rows[1]["enhanced_prompt"] is None


def test_list_shows_several_batches_newest_first(api: BatchApi) -> None:
    first = api.upload(text="one\ntwo")["batch_id"]
    second = api.upload(text="three\nfour")["batch_id"]
    listed = api.http.get("/api/v1/batch").json()
    assert_matches_schema("batch_list", listed)
    assert [b["batch_id"] for b in listed["batches"]] == [second, first]


def _wait_until_no_row_running(api: BatchApi, batch_id: str, timeout: float = 10.0) -> list[dict]:
    """Rows already handed to the provider when a pause lands still finish; wait for them to settle."""
    deadline = time.monotonic() + timeout
    while True:
        rows = json.loads(api.download(batch_id, "json"))["rows"]
        if not any(r["status"] == "running" for r in rows):
            return rows
        assert time.monotonic() < deadline, "rows still running long after the pause"
        time.sleep(0.05)


def test_pause_holds_progress_and_resume_finishes(slow_api: BatchApi) -> None:
    batch = slow_api.upload(content=csv_bytes(prompt_rows(60)), filename="sixty.csv")["batch_id"]
    slow_api.wait_for_progress(batch, 5)
    paused = slow_api.pause(batch)
    assert paused["status"] == "paused"
    rows = _wait_until_no_row_running(slow_api, batch)
    settled = slow_api.status(batch)
    assert settled["processed"] == sum(r["status"] == "succeeded" for r in rows) < 60
    # Observation window: unpaused, this backend finishes 5 rows every 100 ms, so 1 s would show ~50.
    time.sleep(1.0)
    again = slow_api.status(batch)
    assert (again["status"], again["processed"]) == ("paused", settled["processed"])
    assert again["eta_seconds"] is None
    with pytest.raises(ApiFailure) as illegal:
        slow_api.pause(batch)
    assert (illegal.value.status_code, illegal.value.code) == (409, "illegal_transition")
    assert slow_api.resume(batch)["status"] == "running"
    assert slow_api.wait_until(batch)["status"] == "completed"


def test_cancel_stops_pending_rows_and_keeps_finished_ones_downloadable(slow_api: BatchApi) -> None:
    batch = slow_api.upload(content=csv_bytes(prompt_rows(60)), filename="sixty.csv")["batch_id"]
    slow_api.wait_for_progress(batch, 10)
    cancelled = slow_api.cancel(batch)
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelled"] > 0
    final = slow_api.status(batch)
    rows = json.loads(slow_api.download(batch, "json"))["rows"]
    statuses = [r["status"] for r in rows]
    assert len(rows) == 60
    assert statuses.count("cancelled") == final["cancelled"]
    assert final["succeeded"] >= 10
    assert set(statuses) <= {"succeeded", "cancelled", "running"}
    with pytest.raises(ApiFailure) as illegal:
        slow_api.resume(batch)
    assert illegal.value.status_code == 409


def test_retry_reruns_only_failed_rows(
    start_backend: Callable[..., BackendProcess], make_api: Callable[..., BatchApi]
) -> None:
    server = start_backend(env={"BATCHQA_PROVIDER_FAILURE_RATE": "0.3", "BATCHQA_PROVIDER_SEED": "7"})
    api = make_api(server.url)
    batch = api.upload(content=csv_bytes(prompt_rows(100)), filename="flaky.csv")["batch_id"]
    first = api.wait_until(batch)
    assert first["status"] == "completed_with_errors"
    assert 10 <= first["failed"] <= 50
    before = json.loads(api.download(batch, "json"))["rows"]
    assert all(r["error"] for r in before if r["status"] == "failed")

    assert api.retry(batch)["status"] == "queued"
    second = api.wait_until(batch)
    after = json.loads(api.download(batch, "json"))["rows"]
    assert second["failed"] < first["failed"]
    assert second["succeeded"] + second["failed"] == 100
    for old, new in zip(before, after, strict=True):
        if old["status"] == "succeeded":
            assert new == old, f"row {old['row_number']} succeeded before the retry and must be untouched"


def test_completed_batch_cannot_be_retried_or_paused(api: BatchApi) -> None:
    batch = api.upload(text="a prompt\nanother prompt")["batch_id"]
    api.wait_until(batch)
    for action in ("retry", "pause", "resume", "cancel"):
        response = api.action_raw(batch, action)
        assert response.status_code == 409, (action, response.text)
        assert_matches_schema("error", response.json())


@pytest.mark.parametrize(
    ("method", "template"), OTHER_BATCH_ENDPOINTS, ids=[" ".join(e) for e in OTHER_BATCH_ENDPOINTS]
)
def test_another_users_batch_is_404_on_every_endpoint(
    api: BatchApi, make_api: Callable[..., BatchApi], method: str, template: str
) -> None:
    batch = api.upload(text="private prompt one\nprivate prompt two")["batch_id"]
    intruder = make_api(prefix="intruder")
    response = intruder.http.request(method, template.format(id=batch))
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "batch_not_found"
    missing = intruder.http.request(method, template.format(id="0" * 32))
    assert missing.status_code == 404
    assert batch not in {b["batch_id"] for b in intruder.list_batches()}
    assert api.status(batch)["total"] == 2  # the owner still sees it


def test_unknown_download_format_is_rejected(api: BatchApi) -> None:
    batch = api.upload(text="one prompt")["batch_id"]
    response = api.download_raw(batch, "xml")
    assert response.status_code == 422
    assert_matches_schema("error", response.json())


def test_health_metrics_and_openapi(backend: BackendProcess, api: BatchApi) -> None:
    batch = api.upload(text="measure me\nand me")["batch_id"]
    api.wait_until(batch)
    assert httpx.get(f"{backend.url}/healthz").json() == {"status": "ok"}
    metrics = httpx.get(f"{backend.url}/metrics").text
    for name in (
        "batchqa_batches{",
        "batchqa_rows_processed_total",
        "batchqa_provider_latency_seconds_bucket",
        "batchqa_queue_depth",
    ):
        assert name in metrics, name
    assert 'batchqa_batches{status="completed"}' in metrics
    paths = httpx.get(f"{backend.url}/openapi.json").json()["paths"]
    assert "/api/v1/batch/upload" in paths and "/api/v1/batch/status/{batch_id}" in paths
