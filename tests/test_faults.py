"""The fault switch: its parser and catalogue, its start-up checks, and that its faults really break things."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import statistics
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from websockets.sync.client import connect

import reference_backend
from reference_backend import faults
from reference_backend.batches import status_view
from reference_backend.config import Settings
from reference_backend.faults import CATALOGUE, FaultError, parse_faults
from reference_backend.models import Batch
from reference_backend.provider import EnhanceResult, PromptInput, SlowRows, provider_from_settings
from utilities.client.api import BatchApi
from utilities.client.progress_messages import ws_url
from utilities.client.socket_probe import probe_socket
from utilities.procs.backend import BackendProcess

from .helpers import csv_bytes

pytestmark = pytest.mark.area("Chaos")


def test_no_fault_is_on_by_default() -> None:
    assert Settings.model_fields["faults"].default == ""
    assert parse_faults("").describe() == []
    assert parse_faults(None).describe() == []


def test_a_list_of_faults_parses_with_spaces_and_values() -> None:
    faults = parse_faults(" slow_rows=5 , slow_requests=50,")
    assert faults.on("slow_requests") and faults.on("slow_rows")
    assert faults.value("slow_requests") == 50
    assert faults.value("slow_rows") == 5
    assert faults.describe() == ["slow_requests=50", "slow_rows=5"]


def test_a_fault_that_is_off_has_the_default_value() -> None:
    faults = parse_faults("slow_rows=5")
    assert not faults.on("slow_requests")
    assert faults.value("slow_requests") == 0
    assert faults.value("slow_requests", default=7) == 7


def test_every_catalogue_entry_parses_and_is_documented() -> None:
    for name, fault in CATALOGUE.items():
        assert fault.name == name
        assert len(fault.doc) > 40, f"{name} needs a real description"
        assert fault.promise, f"{name} must say which promise it breaks"
        item = f"{name}=1" if fault.takes_value else name
        assert parse_faults(item).describe() == [item]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("slow_request=50", "unknown fault 'slow_request'; known faults: "),
        ("slow_requests", "needs a value in ms"),
        ("slow_requests=", "needs a value in ms"),
        ("slow_requests=-5", "non-negative whole number of ms, not '-5'"),
        ("slow_requests=fast", "not 'fast'"),
        ("slow_rows=1,slow_rows=2", "given twice"),
    ],
    ids=["unknown", "no-value", "empty-value", "negative", "not-a-number", "twice"],
)
def test_a_bad_fault_list_is_refused_with_a_specific_message(text: str, message: str) -> None:
    with pytest.raises(FaultError, match=message.replace("(", r"\(")):
        parse_faults(text)


def test_an_unknown_fault_is_refused_by_the_settings() -> None:
    with pytest.raises(ValidationError, match="unknown fault 'no_such_fault'"):
        Settings(faults="no_such_fault")


def test_the_backend_refuses_to_start_with_an_unknown_fault(start_backend: Callable[..., BackendProcess]) -> None:
    with pytest.raises(RuntimeError, match="unknown fault 'no_such_fault'"):
        start_backend(env={"BATCHQA_FAULTS": "no_such_fault"}).stop()


def test_healthz_lists_no_fault_on_a_correct_backend(backend: BackendProcess) -> None:
    assert httpx.get(f"{backend.url}/healthz").json() == {"status": "ok"}


def test_active_faults_are_listed_in_healthz_and_logged_as_a_warning(
    start_backend: Callable[..., BackendProcess],
) -> None:
    server = start_backend(env={"BATCHQA_FAULTS": "slow_rows=3,slow_requests=1"})
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok", "faults": ["slow_requests=1", "slow_rows=3"]}
    warnings = [line for line in server.output().splitlines() if "WARNING" in line and "FAULTS ON" in line]
    assert warnings, f"no start-up warning names the faults:\n{server.output()}"
    assert "slow_requests=1, slow_rows=3" in warnings[0]


def _request_seconds(url: str, count: int) -> list[float]:
    durations = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(count):
            started = time.perf_counter()
            assert client.get("/api/v1/batch").status_code == 401
            durations.append(time.perf_counter() - started)
    return durations


def test_slow_requests_delays_every_api_request(
    backend: BackendProcess, start_backend: Callable[..., BackendProcess]
) -> None:
    delay_ms = 250
    slow = start_backend(env={"BATCHQA_FAULTS": f"slow_requests={delay_ms}"})
    normal = _request_seconds(backend.url, 5)
    delayed = _request_seconds(slow.url, 5)
    # A sleep never ends early, so the bound below is exact; the ratio is taken side by side in one run.
    assert min(delayed) >= delay_ms / 1000
    assert statistics.median(delayed) >= 2 * statistics.median(normal), (normal, delayed)


def test_slow_requests_leaves_health_checks_alone(start_backend: Callable[..., BackendProcess]) -> None:
    slow = start_backend(env={"BATCHQA_FAULTS": "slow_requests=5000"})
    started = time.perf_counter()
    assert httpx.get(f"{slow.url}/healthz", timeout=30).status_code == 200
    assert time.perf_counter() - started < 5.0


class _EchoProvider:
    async def enhance_many(self, items: list[PromptInput]) -> list[EnhanceResult]:
        return [EnhanceResult(item.key, item.prompt, (), None) for item in items]


def test_slow_rows_waits_per_row_of_the_chunk() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    provider = SlowRows(_EchoProvider(), ms_per_row=40, sleep=sleep)
    items = [PromptInput(key=str(i), prompt=f"p{i}", category=None, attempt=1) for i in range(3)]
    results = asyncio.run(provider.enhance_many(items))
    assert [r.enhanced_prompt for r in results] == ["p0", "p1", "p2"]
    assert slept == [pytest.approx(0.12)]


def test_slow_rows_wraps_the_configured_provider_only_when_on() -> None:
    assert not isinstance(provider_from_settings(Settings()), SlowRows)
    wrapped = provider_from_settings(Settings(faults="slow_rows=7"))
    assert isinstance(wrapped, SlowRows) and wrapped.ms_per_row == 7


BACKEND_SOURCES = Path(reference_backend.__file__).parent


def test_every_fault_of_the_catalogue_is_read_by_a_code_path() -> None:
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for path in BACKEND_SOURCES.rglob("*")
        if path.suffix in (".py", ".js") and path.name != "faults.py"
    )
    unread = [name for name in CATALOGUE if f'"{name}"' not in sources]
    assert not unread, f"faults no code path reads: {unread}"


def test_a_hook_asking_for_a_fault_not_in_the_catalogue_fails_loudly() -> None:
    with pytest.raises(FaultError, match="unknown fault 'swap_row'"):
        parse_faults("swap_rows").on("swap_row")


def test_a_fault_that_takes_no_value_refuses_one() -> None:
    with pytest.raises(FaultError, match="takes no value"):
        parse_faults("swap_rows=1")


@pytest.fixture
def installed() -> Iterator[Callable[[str], None]]:
    """Switch faults on in this process (for the in-process checks); the switch is off again afterwards."""
    yield lambda text: faults.install(parse_faults(text))
    faults.install(faults.NONE)


def _batch(**counts: int) -> Batch:
    fields = {"succeeded": 0, "failed": 0, "cancelled": 0} | counts
    return Batch(id="b" * 32, status="running", total=3, seq=1, **fields)


def test_wrong_percent_and_miscount_break_the_status_body(installed: Callable[[str], None]) -> None:
    batch = _batch(succeeded=0, failed=1)
    assert (status_view(batch)["percent"], status_view(batch)["processed"]) == (33.3, 1)
    installed("wrong_percent,miscount")
    assert (status_view(batch)["percent"], status_view(batch)["processed"]) == (33.0, 0)


def _rows(count: int) -> list[dict[str, str]]:
    return [{"prompt": f"Explain topic {i} to a beginner", "note": f"note {i}"} for i in range(1, count + 1)]


def test_ui_faults_are_named_in_the_page_only_when_on(start_backend: Callable[..., BackendProcess]) -> None:
    server = start_backend(env={"BATCHQA_FAULTS": "ui_wrong_download"})
    page = httpx.get(f"{server.url}/batches/abc").text
    assert '<meta name="batchqa-faults" content="ui_wrong_download">' in page
    script = httpx.get(f"{server.url}/static/js/batch.js").text
    assert '"ui_wrong_download"' in script and '"ui_frozen_progress"' in script


@pytest.fixture(scope="module")
def faulty_downloads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackendProcess, BatchApi, str]]:
    """A finished batch, with failed rows, on a backend whose downloads carry every download fault."""
    names = "swap_rows,drop_field,hide_errors,no_csv_neutralise,mangle_unicode,bad_manifest_checksum,miscount"
    env = {"BATCHQA_FAULTS": names, "BATCHQA_PROVIDER_FAILURE_RATE": "0.5"}
    with BackendProcess(tmp_path_factory.mktemp("faulty-downloads"), env=env) as server:
        api = BatchApi.new_user(server.url)
        rows = _rows(8)
        rows[1]["prompt"] = "Describe a café in Zürich"
        for row in rows:
            row["formula"] = "=1+1"
            row["note"] = row.pop("note")
        batch = api.upload(content=csv_bytes(rows), filename="faulty.csv")["batch_id"]
        status = api.wait_until(batch)
        assert status["failed"] > 0, f"the test needs failed rows: {status}"
        yield server, api, batch
        api.close()


def test_download_faults_each_break_their_promise(faulty_downloads: tuple[BackendProcess, BatchApi, str]) -> None:
    _server, api, batch = faulty_downloads
    raw = api.download(batch, "json")
    rows = json.loads(raw)["rows"]
    assert [r["row_number"] for r in rows][:3] == [2, 1, 3], "swap_rows"
    assert {r["fields"]["note"] for r in rows} == {""}, "drop_field"
    assert all(r["status"] == "succeeded" and r["error"] is None for r in rows), "hide_errors"
    assert "café".encode() not in raw and "cafÃ©".encode() in raw, "mangle_unicode"
    assert ",=1+1," in api.download(batch, "csv").decode("utf-8"), "no_csv_neutralise"
    with zipfile.ZipFile(io.BytesIO(api.download(batch, "zip"))) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        listed = {f["name"]: f["sha256"] for f in manifest["files"]}
        assert listed["results.csv"] != hashlib.sha256(archive.read("results.csv")).hexdigest(), "manifest"
    status = api.status(batch)
    assert status["processed"] == status["succeeded"] < status["succeeded"] + status["failed"], "miscount"


def test_upload_and_isolation_faults_each_break_their_promise(
    start_backend: Callable[..., BackendProcess],
) -> None:
    env = {"BATCHQA_FAULTS": "drop_first_row,limit_off_by_one,skip_type_sniffing,leak_batches"}
    server = start_backend(env={**env, "BATCHQA_MAX_PROMPTS": "5"})
    with BatchApi.new_user(server.url) as owner, BatchApi.new_user(server.url) as intruder:
        three = owner.upload(text="first prompt here\nsecond prompt here\nthird prompt here")
        assert three["total"] == 2, "drop_first_row"
        six = owner.upload_raw(text="\n".join(f"prompt number {i}" for i in range(6)))
        assert six.status_code == 202, "limit_off_by_one"
        page = b"<!doctype html><html><body>Sign in to continue</body></html>"
        assert owner.upload_raw(content=page, filename="prompts.txt").status_code == 202, "skip_type_sniffing"
        assert intruder.http.get(f"/api/v1/batch/status/{three['batch_id']}").status_code == 200, "leak_batches"


def test_complete_early_marks_a_batch_completed_with_rows_left(start_backend: Callable[..., BackendProcess]) -> None:
    env = {"BATCHQA_PROVIDER_BATCH_SIZE": "2", "BATCHQA_WORKER_CONCURRENCY": "1", "BATCHQA_PROVIDER_LATENCY_MS": "50"}
    server = start_backend(env={**env, "BATCHQA_FAULTS": "complete_early"})
    with BatchApi.new_user(server.url) as api:
        batch = api.upload(content=csv_bytes(_rows(6)), filename="early.csv")["batch_id"]
        status = api.wait_until(batch, timeout=30)
        assert status["status"] == "completed" and status["processed"] < status["total"]


def test_pause_and_cancel_faults_answer_200_and_change_nothing(start_backend: Callable[..., BackendProcess]) -> None:
    env = {"BATCHQA_PROVIDER_BATCH_SIZE": "1", "BATCHQA_WORKER_CONCURRENCY": "1", "BATCHQA_PROVIDER_LATENCY_MS": "200"}
    server = start_backend(env={**env, "BATCHQA_FAULTS": "ignore_pause,ignore_cancel"})
    with BatchApi.new_user(server.url) as api:
        batch = api.upload(content=csv_bytes(_rows(20)), filename="unstoppable.csv")["batch_id"]
        assert api.pause(batch)["status"] != "paused", "ignore_pause"
        assert api.cancel(batch)["status"] != "cancelled", "ignore_cancel"
        assert api.status(batch)["cancelled"] == 0


def test_origin_check_off_lets_a_foreign_origin_open_a_socket(start_backend: Callable[..., BackendProcess]) -> None:
    server = start_backend(env={"BATCHQA_FAULTS": "origin_check_off"})
    with BatchApi.new_user(server.url) as api:
        batch = api.upload(text="one prompt to enhance")["batch_id"]
        bearer = {"Authorization": f"Bearer {api.token}"}
        outcome = probe_socket(server.url, batch, headers=bearer, origin="https://evil.example.test", until_messages=1)
    assert outcome.close_code is None and outcome.first is not None and outcome.first["type"] == "snapshot"


def _retry_attempts(server: BackendProcess) -> tuple[set[int], dict[int, int]]:
    """Row numbers that failed the first run, and every row's attempts after one retry."""
    with BatchApi.new_user(server.url) as api:
        batch = api.upload(content=csv_bytes(_rows(10)), filename="retry.csv")["batch_id"]
        assert api.wait_until(batch)["status"] == "completed_with_errors", "the test needs failed rows"
        first = json.loads(api.download(batch, "json"))["rows"]
        assert {r["attempts"] for r in first} == {1}
        api.retry(batch)
        api.wait_until(batch)
        after = json.loads(api.download(batch, "json"))["rows"]
    return {r["row_number"] for r in first if r["status"] == "failed"}, {r["row_number"]: r["attempts"] for r in after}


@pytest.mark.parametrize("fault", ["", "retry_all_rows"], ids=["correct", "retry_all_rows"])
def test_attempts_show_whether_a_retry_reran_only_the_failed_rows(
    fault: str, start_backend: Callable[..., BackendProcess]
) -> None:
    server = start_backend(env={"BATCHQA_PROVIDER_FAILURE_RATE": "0.5", "BATCHQA_FAULTS": fault})
    failed, attempts = _retry_attempts(server)
    rerun = {number for number, count in attempts.items() if count == 2}
    assert set(attempts.values()) <= {1, 2}
    assert rerun == (set(attempts) if fault else failed)


def _socket_messages(url: str, batch: str, token: str, *, last_seq: int | None, seconds: float) -> list[dict]:
    """Every message a progress socket sends within ``seconds``."""
    messages: list[dict] = []
    with connect(ws_url(url, batch, last_seq=last_seq, token=token), open_timeout=10) as ws:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                messages.append(json.loads(ws.recv(timeout=remaining)))
            except TimeoutError:
                break
    return messages


@pytest.mark.parametrize("fault", ["", "replay_skips_event"], ids=["correct", "replay_skips_event"])
def test_replay_from_last_seq_starts_right_after_it_unless_the_fault_skips_one(
    fault: str, start_backend: Callable[..., BackendProcess]
) -> None:
    server = start_backend(env={"BATCHQA_FAULTS": fault})
    with BatchApi.new_user(server.url) as api:
        batch = api.upload(content=csv_bytes(_rows(3)), filename="replay.csv")["batch_id"]
        assert api.wait_until(batch)["seq"] >= 3
        messages = _socket_messages(server.url, batch, api.token or "", last_seq=1, seconds=1.5)
    advancing = [m["seq"] for m in messages if m["type"] != "heartbeat"]
    assert advancing[0] == (3 if fault else 2), advancing


@pytest.mark.parametrize("fault", ["", "no_heartbeat_when_paused"], ids=["correct", "no_heartbeat_when_paused"])
def test_a_paused_batch_sends_heartbeats_unless_the_fault_silences_them(
    fault: str, start_backend: Callable[..., BackendProcess]
) -> None:
    env = {"BATCHQA_PROVIDER_LATENCY_MS": "1000", "BATCHQA_WORKER_CONCURRENCY": "1", "BATCHQA_FAULTS": fault}
    server = start_backend(env=env)
    with BatchApi.new_user(server.url) as api:
        batch = api.upload(content=csv_bytes(_rows(30)), filename="paused.csv")["batch_id"]
        assert api.pause(batch)["status"] == "paused"
        # A heartbeat is due 1 s after the last message; the in-flight call's progress may come first. Six
        # seconds leave room for two beats on a busy machine; with the fault even one is a failure.
        messages = _socket_messages(server.url, batch, api.token or "", last_seq=None, seconds=6.0)
        api.cancel(batch)
    beats = [m for m in messages if m["type"] == "heartbeat"]
    assert (len(beats) == 0) if fault else (len(beats) >= 2), messages


def test_the_fault_switch_page_lists_every_fault_of_the_catalogue() -> None:
    page = (BACKEND_SOURCES.parent / "docs" / "faults.md").read_text(encoding="utf-8")
    missing = [name for name in CATALOGUE if f"| `{name}" not in page]
    assert not missing, f"docs/faults.md lacks {missing}"
