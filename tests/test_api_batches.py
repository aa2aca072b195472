"""The bundled backend beyond the contract: its provider's failure rate drives retries, and its operations
endpoints (health, metrics, OpenAPI). The contract's batch checks run against any target in ``e2e/api/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from utilities.client.api import BatchApi
from utilities.procs.backend import BackendProcess

from .helpers import csv_bytes, prompt_rows

pytestmark = pytest.mark.area("API")


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
