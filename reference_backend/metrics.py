"""Prometheus metrics: the queue as the database sees it, rows and provider calls, workers, sockets, HTTP.

The names are what deploy/alerts.yaml reads; a test scrapes a running backend and checks every name the
rules use is there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .lifecycle import BatchStatus
from .progress_stream import ADVANCING_TYPES

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")


@dataclass(frozen=True)
class QueueSnapshot:
    """What the rows table says at one moment; every API process reads the same database, so the same truth."""

    batches_by_status: Mapping[str, int] = field(default_factory=dict)
    pending: int = 0
    running: int = 0
    lease_lapsed: int = 0
    oldest_wait_seconds: float = 0.0


class _StoreCollector(Collector):
    """Reads counts from the database at scrape time."""

    def __init__(self, snapshot: Callable[[], QueueSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self._snapshot()
        batches = GaugeMetricFamily("batchqa_batches", "Batches by status.", labels=["status"])
        for status in BatchStatus:
            batches.add_metric([status.value], now.batches_by_status.get(status.value, 0))
        yield batches
        yield GaugeMetricFamily("batchqa_queue_depth", "Rows waiting for a worker.", value=now.pending)
        yield GaugeMetricFamily(
            "batchqa_queue_oldest_age_seconds",
            "How long the longest-waiting queued or running batch with pending rows has gone without a claim "
            "or an event (rows carry no enqueue time; a batch's last activity stands in); 0 when none waits.",
            value=now.oldest_wait_seconds,
        )
        yield GaugeMetricFamily("batchqa_rows_running", "Rows claimed by a worker, not yet stored.", value=now.running)
        yield GaugeMetricFamily(
            "batchqa_rows_lease_lapsed",
            "Running rows whose lease lapsed: their worker stopped renewing and no live worker has taken them over.",
            value=now.lease_lapsed,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # process_resident_memory_bytes and friends: how a load run reads a remote server's memory.
        ProcessCollector(registry=self.registry)
        self.rows_processed = Counter(
            "batchqa_rows_processed", "Rows finished by the workers.", ["outcome"], registry=self.registry
        )
        self.provider_latency = Histogram(
            "batchqa_provider_latency_seconds",
            "Time of one batched provider call.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        # A claim is on the provider's schedule (the next calls wait for it); a store is not.
        self.claim_seconds = Histogram(
            "batchqa_claim_seconds",
            "A worker pool's claim: from asking the database to the chunks in hand (one transaction).",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "batchqa_store_seconds",
            "A worker pool's store of the results of calls that returned together (one transaction).",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
            registry=self.registry,
        )
        self.provider_call_errors = Counter(
            "batchqa_provider_call_errors",
            "Provider calls that raised (every row of the call failed); calls in all: the latency histogram's count.",
            registry=self.registry,
        )
        self.uploads = Counter("batchqa_uploads", "Upload attempts by outcome.", ["outcome"], registry=self.registry)
        self.lease_renewals = Counter(
            "batchqa_lease_renewals", "Row leases renewed by this process's workers.", registry=self.registry
        )
        self.worker_last_seen = Gauge(
            "batchqa_worker_last_seen_timestamp_seconds",
            "Unix time this process's worker pool last ticked (every third of the lease).",
            ["worker"],
            registry=self.registry,
        )
        self.sockets_open = Gauge(
            "batchqa_sockets_open", "Progress sockets open on this process.", registry=self.registry
        )
        self.fanout_lag = Histogram(
            "batchqa_fanout_lag_seconds",
            "From an event being stored (its event_time, any process's clock) to its message leaving on a socket; "
            "progress held back by coalescing counts.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.http_responses = Counter(
            "batchqa_http_responses", "HTTP responses by status class.", ["code"], registry=self.registry
        )
        # Series exist from the first scrape, so a rate over them is 0 rather than absent.
        for outcome in ("succeeded", "failed"):
            self.rows_processed.labels(outcome)
        for code in STATUS_CLASSES:
            self.http_responses.labels(code)

    def watch_store(self, snapshot: Callable[[], QueueSnapshot]) -> None:
        self.registry.register(_StoreCollector(snapshot))

    def watch_sockets(self, count: Callable[[], int]) -> None:
        self.sockets_open.set_function(count)

    def worker_seen(self, worker_id: str) -> None:
        self.worker_last_seen.labels(worker_id).set(time.time())

    def message_sent(self, message: Mapping[str, Any]) -> None:
        """Observe the fan-out lag of a socket message that carries a stored event."""
        if message.get("type") not in ADVANCING_TYPES or not message.get("event_time"):
            return
        stored_at = datetime.fromisoformat(message["event_time"]).timestamp()
        self.fanout_lag.observe(max(time.time() - stored_at, 0.0))


class HttpResponseCounter:
    """ASGI middleware counting HTTP responses by status class; an exception that escapes counts as a 5xx."""

    def __init__(self, app: ASGIApp, *, counter: Counter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                self.counter.labels(f"{message['status'] // 100}xx").inc()
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            if not status:
                self.counter.labels("5xx").inc()
            raise
