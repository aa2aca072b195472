"""The fault switch: its parser and catalogue, its start-up checks, and that its faults really break things."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable

import httpx
import pytest
from pydantic import ValidationError

from reference_backend.config import Settings
from reference_backend.faults import CATALOGUE, FaultError, parse_faults
from reference_backend.provider import EnhanceResult, PromptInput, SlowRows, provider_from_settings
from utilities.backend_process import BackendProcess


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
