"""Prometheus metrics: batches by status, rows processed, provider latency, queue depth."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .states import BatchStatus


class _StoreCollector(Collector):
    """Reads counts from the database at scrape time, so every process reports the same truth."""

    def __init__(self, snapshot: Callable[[], tuple[dict[str, int], int]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status, depth = self._snapshot()
        batches = GaugeMetricFamily("batchqa_batches", "Batches by status.", labels=["status"])
        for status in BatchStatus:
            batches.add_metric([status.value], by_status.get(status.value, 0))
        yield batches
        yield GaugeMetricFamily("batchqa_queue_depth", "Rows waiting for a worker.", value=depth)


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
        self.uploads = Counter("batchqa_uploads", "Upload attempts by outcome.", ["outcome"], registry=self.registry)

    def watch_store(self, snapshot: Callable[[], tuple[dict[str, int], int]]) -> None:
        self.registry.register(_StoreCollector(snapshot))
