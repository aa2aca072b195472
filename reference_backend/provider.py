"""The provider the worker pool calls with one chunk of prompts at a time, modelling a batched API call."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from . import faults
from .config import Settings
from .enhancer import UnenhanceablePrompt, check_enhanceable, enhance

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

LLM_TECHNIQUES = ("llm",)
_SYSTEM_PROMPT = (
    "You improve prompts for large language models. Rewrite the user's prompt so it states a role, the "
    "context, the audience, constraints and the expected output format, keeping every detail the user "
    "gave. Reply with the improved prompt only."
)


@dataclass(frozen=True)
class PromptInput:
    """One row to enhance; ``key`` is opaque to the provider and echoed back in the result."""

    key: str
    prompt: str
    category: str | None
    attempt: int


@dataclass(frozen=True)
class EnhanceResult:
    """The outcome for one row: either ``enhanced_prompt`` or ``error`` is set, never both."""

    key: str
    enhanced_prompt: str | None
    techniques: tuple[str, ...]
    error: str | None

    @classmethod
    def failed(cls, key: str, error: str) -> EnhanceResult:
        return cls(key=key, enhanced_prompt=None, techniques=(), error=error)


class Provider(Protocol):
    async def enhance_many(self, items: Sequence[PromptInput]) -> list[EnhanceResult]:
        """Enhance a chunk; one result per item, in the order of ``items``. A failed row is a result."""
        ...


class RuleBasedProvider:
    """The default provider: the local rule-based enhancer behind a simulated network call.

    ``latency_ms`` is paid once per call, as one batched API request would be, and is the call's whole
    duration: the enhancer's own CPU time falls inside it. Calls that start together (a wave of slots) are
    all issued before any of them computes, so they return together after ``latency_ms``, as remote calls
    would; without that, the local enhancement of a wave's rows (about 30 µs a prompt) would run one call
    after another and add to every wave. ``failure_rate`` fails a row when a generator seeded with
    ``seed``, the prompt and the attempt says so, so a run can be replayed exactly and a retry (the next
    attempt) gets a fresh draw.
    """

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        failure_rate: float = 0.0,
        seed: int = 0,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        if latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, not {latency_ms}")
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be between 0 and 1, not {failure_rate}")
        self.latency_ms = latency_ms
        self.failure_rate = failure_rate
        self.seed = seed
        self._sleep = sleep
        self._clock = clock

    async def enhance_many(self, items: Sequence[PromptInput]) -> list[EnhanceResult]:
        if self.latency_ms <= 0:
            return [self._enhance_one(item) for item in items]
        returns_at = self._clock() + self.latency_ms / 1000
        await self._sleep(0)  # let the other calls of a wave be issued before this one computes
        results = [self._enhance_one(item) for item in items]
        await self._sleep(max(0.0, returns_at - self._clock()))
        return results

    def simulates_failure(self, item: PromptInput) -> bool:
        if self.failure_rate <= 0:
            return False
        draw = random.Random(f"{self.seed}:{item.prompt}:{item.attempt}").random()
        return draw < self.failure_rate

    def _enhance_one(self, item: PromptInput) -> EnhanceResult:
        try:
            enhancement = enhance(item.prompt, item.category)
        except UnenhanceablePrompt as exc:
            return EnhanceResult.failed(item.key, exc.reason)
        if self.simulates_failure(item):
            return EnhanceResult.failed(item.key, f"simulated provider failure (failure rate {self.failure_rate:g})")
        return EnhanceResult(
            key=item.key, enhanced_prompt=enhancement.text, techniques=enhancement.techniques, error=None
        )


class OpenAICompatibleProvider:
    """Any endpoint speaking the OpenAI ``/chat/completions`` format; the chunk's requests run at once."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._transport = transport

    async def enhance_many(self, items: Sequence[PromptInput]) -> list[EnhanceResult]:
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers, timeout=self.timeout_s, transport=self._transport
        ) as client:
            return list(await asyncio.gather(*(self._enhance_one(client, item) for item in items)))

    async def _enhance_one(self, client: httpx.AsyncClient, item: PromptInput) -> EnhanceResult:
        try:
            check_enhanceable(item.prompt)
        except UnenhanceablePrompt as exc:
            return EnhanceResult.failed(item.key, exc.reason)
        try:
            response = await client.post("/chat/completions", json=self._request_body(item))
        except httpx.TimeoutException:
            return EnhanceResult.failed(item.key, f"provider timed out after {self.timeout_s:g} s")
        except httpx.HTTPError as exc:
            logger.debug("provider request for %s failed: %r", item.key, exc)
            return EnhanceResult.failed(item.key, f"provider request failed ({type(exc).__name__})")
        if not response.is_success:
            return EnhanceResult.failed(item.key, f"provider returned HTTP {response.status_code}")
        try:
            text = response.json()["choices"][0]["message"]["content"]
        except (ValueError, LookupError, TypeError):
            text = None
        if not isinstance(text, str) or not text.strip():
            return EnhanceResult.failed(item.key, "provider returned no enhanced prompt")
        return EnhanceResult(key=item.key, enhanced_prompt=text, techniques=LLM_TECHNIQUES, error=None)

    def _request_body(self, item: PromptInput) -> dict[str, Any]:
        user = item.prompt if not item.category else f"Category: {item.category}\n\n{item.prompt}"
        return {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": _SYSTEM_PROMPT},
                {"role": "user", "content": user},
            ],
        }


class SlowRows:
    """The ``slow_rows`` fault: every row of a chunk costs ``ms_per_row`` more before the real provider answers."""

    def __init__(self, provider: Provider, *, ms_per_row: int, sleep: Sleep = asyncio.sleep) -> None:
        self.provider = provider
        self.ms_per_row = ms_per_row
        self._sleep = sleep

    async def enhance_many(self, items: Sequence[PromptInput]) -> list[EnhanceResult]:
        await self._sleep(len(items) * self.ms_per_row / 1000)
        return await self.provider.enhance_many(items)


def build_provider(
    *,
    latency_ms: float,
    failure_rate: float,
    seed: int,
    kind: str = "rules",
    openai_base_url: str | None = None,
    openai_api_key: str | None = None,
    openai_model: str | None = None,
) -> Provider:
    """The provider named by ``kind``, ``rules`` or ``openai``; latency and failure rate apply to rules."""
    if kind == "rules":
        return RuleBasedProvider(latency_ms=latency_ms, failure_rate=failure_rate, seed=seed)
    if kind == "openai":
        if not openai_base_url or not openai_model:
            raise ValueError("the openai provider needs a base URL and a model")
        return OpenAICompatibleProvider(base_url=openai_base_url, model=openai_model, api_key=openai_api_key)
    raise ValueError(f"unknown provider kind {kind!r}; expected 'rules' or 'openai'")


def provider_from_settings(settings: Settings) -> Provider:
    """The provider ``BATCHQA_PROVIDER_*`` and ``BATCHQA_OPENAI_*`` describe (API and worker processes alike)."""
    provider = build_provider(
        latency_ms=settings.provider_latency_ms,
        failure_rate=settings.provider_failure_rate,
        seed=settings.provider_seed,
        kind=settings.provider_kind,
        openai_base_url=settings.openai_base_url,
        openai_api_key=settings.openai_api_key,
        openai_model=settings.openai_model,
    )
    slow_ms = faults.parse_faults(settings.faults).value("slow_rows")
    return SlowRows(provider, ms_per_row=slow_ms) if slow_ms else provider
