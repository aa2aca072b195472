"""Providers: order and keys kept, reproducible simulated failures, latency per call, the OpenAI adapter."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Sequence

import httpx
import pytest

from reference_backend.enhancer import NO_WORDS, enhance
from reference_backend.provider import (
    EnhanceResult,
    OpenAICompatibleProvider,
    PromptInput,
    RuleBasedProvider,
    build_provider,
)

pytestmark = pytest.mark.area("Enhancer and provider")

SIMULATED = "simulated provider failure (failure rate 0.3)"


def items_for(prompts: Sequence[str], *, attempt: int = 1, category: str | None = None) -> list[PromptInput]:
    return [
        PromptInput(key=f"row-{index}", prompt=prompt, category=category, attempt=attempt)
        for index, prompt in enumerate(prompts)
    ]


def failed_keys(results: Sequence[EnhanceResult]) -> set[str]:
    return {result.key for result in results if result.error is not None}


DISTINCT_1000 = [f"Explain topic number {index} to me" for index in range(1000)]


def test_rule_based_results_echo_keys_in_order_with_the_enhancement() -> None:
    items = items_for(["Write a poem", "Explain DNS", "python"], category="writing")
    results = asyncio.run(RuleBasedProvider().enhance_many(items))
    assert [result.key for result in results] == ["row-0", "row-1", "row-2"]
    for item, result in zip(items, results, strict=True):
        expected = enhance(item.prompt, item.category)
        assert result == EnhanceResult(item.key, expected.text, expected.techniques, None)


def test_rule_based_unenhanceable_prompt_is_a_failed_row_not_an_exception() -> None:
    results = asyncio.run(RuleBasedProvider().enhance_many(items_for(["Hi there", "!!!", "🙂🙂"])))
    assert [result.error for result in results] == [None, NO_WORDS, NO_WORDS]
    assert results[1] == EnhanceResult("row-1", None, (), NO_WORDS)


def test_rule_based_failure_rate_is_near_the_rate_and_reproducible() -> None:
    items = items_for(DISTINCT_1000)
    first = asyncio.run(RuleBasedProvider(failure_rate=0.3, seed=0).enhance_many(items))
    again = asyncio.run(RuleBasedProvider(failure_rate=0.3, seed=0).enhance_many(items))
    assert 250 <= len(failed_keys(first)) <= 350
    assert failed_keys(first) == failed_keys(again)
    assert {result.error for result in first if result.error} == {SIMULATED}
    assert all(result.enhanced_prompt is None and result.techniques == () for result in first if result.error)


def test_rule_based_failure_of_a_row_does_not_depend_on_its_chunk() -> None:
    provider = RuleBasedProvider(failure_rate=0.3, seed=0)
    whole = asyncio.run(provider.enhance_many(items_for(DISTINCT_1000)))

    async def in_chunks_of_7() -> list[EnhanceResult]:
        items = items_for(DISTINCT_1000)
        results: list[EnhanceResult] = []
        for start in range(0, len(items), 7):
            results += await provider.enhance_many(items[start : start + 7])
        return results

    assert failed_keys(asyncio.run(in_chunks_of_7())) == failed_keys(whole)


def test_rule_based_retry_attempt_draws_again() -> None:
    provider = RuleBasedProvider(failure_rate=0.3, seed=0)
    first = failed_keys(asyncio.run(provider.enhance_many(items_for(DISTINCT_1000, attempt=1))))
    second = failed_keys(asyncio.run(provider.enhance_many(items_for(DISTINCT_1000, attempt=2))))
    assert first != second
    assert 250 <= len(second) <= 350
    # Independent draws: about 30% of first-attempt failures fail again.
    assert len(first & second) < len(first) / 2


def test_rule_based_seed_changes_which_rows_fail() -> None:
    items = items_for(DISTINCT_1000)
    seed_0 = failed_keys(asyncio.run(RuleBasedProvider(failure_rate=0.3, seed=0).enhance_many(items)))
    seed_1 = failed_keys(asyncio.run(RuleBasedProvider(failure_rate=0.3, seed=1).enhance_many(items)))
    assert seed_0 != seed_1


@pytest.mark.parametrize(("rate", "expected_failures"), [(0.0, 0), (1.0, 1000)])
def test_rule_based_failure_rate_bounds(rate: float, expected_failures: int) -> None:
    results = asyncio.run(RuleBasedProvider(failure_rate=rate).enhance_many(items_for(DISTINCT_1000)))
    assert len(failed_keys(results)) == expected_failures


@pytest.mark.parametrize("kwargs", [{"failure_rate": -0.1}, {"failure_rate": 1.5}, {"latency_ms": -1.0}], ids=str)
def test_rule_based_refuses_impossible_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RuleBasedProvider(**kwargs)


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class StepClock:
    """A clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float = 0.0) -> None:
        self.now, self.step = 100.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.parametrize("chunk_size", [1, 10, 100])
def test_rule_based_latency_is_paid_once_per_call_whatever_the_chunk_size(chunk_size: int) -> None:
    sleep = FakeSleep()
    provider = RuleBasedProvider(latency_ms=50, sleep=sleep, clock=StepClock())
    asyncio.run(provider.enhance_many(items_for(DISTINCT_1000[:chunk_size])))
    assert sleep.calls == [0, pytest.approx(0.05)]  # a yield (the wave's other calls are issued), then the latency


def test_rule_based_latency_includes_the_enhancers_own_time() -> None:
    sleep = FakeSleep()
    provider = RuleBasedProvider(latency_ms=50, sleep=sleep, clock=StepClock(step=0.02))
    asyncio.run(provider.enhance_many(items_for(["Hello world"])))
    assert sleep.calls == [0, pytest.approx(0.03)]  # 20 ms went by between the call's start and its computing


def test_every_call_of_a_wave_is_issued_before_any_of_them_computes() -> None:
    """So the calls' latencies overlap as remote calls' would, and the wave's computing does not add to it."""
    log: list[str] = []

    class Logged(RuleBasedProvider):
        def _enhance_one(self, item: PromptInput) -> EnhanceResult:
            log.append(f"compute {item.key}")
            return super()._enhance_one(item)

    async def yielding_sleep(seconds: float) -> None:
        log.append("issued" if seconds == 0 else "waits")
        await asyncio.sleep(0)

    async def wave() -> None:
        provider = Logged(latency_ms=100, sleep=yielding_sleep, clock=StepClock())
        await asyncio.gather(*(provider.enhance_many(items_for([f"Prompt number {n}"])) for n in range(3)))

    asyncio.run(wave())
    assert log[:3] == ["issued"] * 3 and log.count("waits") == 3
    assert log.count("compute row-0") == 3


def test_rule_based_without_latency_does_not_sleep() -> None:
    sleep = FakeSleep()
    asyncio.run(RuleBasedProvider(sleep=sleep).enhance_many(items_for(["Hello world"])))
    assert sleep.calls == []


def test_rule_based_three_sequential_calls_at_50_ms_take_at_least_150_ms() -> None:
    provider = RuleBasedProvider(latency_ms=50)
    chunks = [items_for(DISTINCT_1000[start : start + 10]) for start in (0, 10, 20)]

    async def sequentially() -> None:
        for chunk in chunks:
            await provider.enhance_many(chunk)

    started = time.perf_counter()
    asyncio.run(sequentially())
    assert time.perf_counter() - started >= 0.15


def test_build_provider_defaults_to_rules_with_the_settings() -> None:
    provider = build_provider(latency_ms=5, failure_rate=0.2, seed=9)
    assert isinstance(provider, RuleBasedProvider)
    assert (provider.latency_ms, provider.failure_rate, provider.seed) == (5, 0.2, 9)


def test_build_provider_openai_needs_url_and_model() -> None:
    provider = build_provider(
        latency_ms=0, failure_rate=0, seed=0, kind="openai", openai_base_url="http://llm/v1", openai_model="m"
    )
    assert isinstance(provider, OpenAICompatibleProvider)
    with pytest.raises(ValueError, match="base URL and a model"):
        build_provider(latency_ms=0, failure_rate=0, seed=0, kind="openai", openai_model="m")


def test_build_provider_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown provider kind"):
        build_provider(latency_ms=0, failure_rate=0, seed=0, kind="magic")


def completion(content: object) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": content}}]})


Handler = Callable[[httpx.Request], httpx.Response | Coroutine[None, None, httpx.Response]]


def openai_provider(handler: Handler, *, api_key: str | None = None) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        base_url="http://llm.test/v1", model="tiny", api_key=api_key, transport=httpx.MockTransport(handler)
    )


def test_openai_posts_chat_completions_and_returns_the_reply() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        return completion(f"Better: {body['messages'][-1]['content']}")

    provider = openai_provider(handler, api_key="sk-test")
    results = asyncio.run(provider.enhance_many(items_for(["Explain DNS"], category="tech")))
    assert results == [EnhanceResult("row-0", "Better: Category: tech\n\nExplain DNS", ("llm",), None)]
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "http://llm.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert json.loads(request.content)["model"] == "tiny"


def test_openai_sends_a_chunk_concurrently_and_keeps_order() -> None:
    prompts = [f"prompt {index}" for index in range(5)]

    async def run() -> list[EnhanceResult]:
        # Every request waits for all the others: only requests sent concurrently get past the barrier.
        barrier = asyncio.Barrier(len(prompts))

        async def handler(request: httpx.Request) -> httpx.Response:
            prompt = json.loads(request.content)["messages"][-1]["content"]
            await barrier.wait()
            return completion(prompt.upper())

        return await asyncio.wait_for(openai_provider(handler).enhance_many(items_for(prompts)), timeout=2)

    results = asyncio.run(run())
    assert [result.enhanced_prompt for result in results] == [prompt.upper() for prompt in prompts]


@pytest.mark.parametrize(
    ("respond", "error"),
    [
        (lambda: httpx.Response(500), "provider returned HTTP 500"),
        (lambda: httpx.Response(429, json={"error": "slow down"}), "provider returned HTTP 429"),
        (lambda: httpx.Response(200, text="not json"), "provider returned no enhanced prompt"),
        (lambda: httpx.Response(200, json={"choices": []}), "provider returned no enhanced prompt"),
        (lambda: completion(None), "provider returned no enhanced prompt"),
        (lambda: completion("   "), "provider returned no enhanced prompt"),
    ],
    ids=["500", "429", "not-json", "no-choices", "null-content", "blank-content"],
)
def test_openai_bad_responses_become_failed_rows(respond: Callable[[], httpx.Response], error: str) -> None:
    provider = openai_provider(lambda request: respond())
    results = asyncio.run(provider.enhance_many(items_for(["Explain DNS"])))
    assert results == [EnhanceResult("row-0", None, (), error)]


@pytest.mark.parametrize(
    ("exception", "error"),
    [
        (httpx.ReadTimeout("slow"), "provider timed out after 30 s"),
        (httpx.ConnectError("refused"), "provider request failed (ConnectError)"),
    ],
    ids=["timeout", "connect"],
)
def test_openai_transport_errors_become_failed_rows(exception: Exception, error: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exception

    results = asyncio.run(openai_provider(handler).enhance_many(items_for(["Explain DNS"])))
    assert results == [EnhanceResult("row-0", None, (), error)]


def test_openai_does_not_send_a_prompt_without_words() -> None:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content)["messages"][-1]["content"])
        return completion("ok")

    results = asyncio.run(openai_provider(handler).enhance_many(items_for(["!!!", "Hello"])))
    assert [result.error for result in results] == [NO_WORDS, None]
    assert sent == ["Hello"]
