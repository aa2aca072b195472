"""A load run's numbers from Locust's stats: request percentiles from its rounded histograms, throughput,
failures, the socket users' gaps, lag and seq problems, and the server's memory growth."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from utilities.perf import names
from utilities.perf.server_memory import MIB, memory_growth

PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def percentile(histogram: Mapping[str | int | float, int], fraction: float) -> float | None:
    """Locust's percentile over its rounded response-time histogram (``response_times``)."""
    points = sorted((float(k), n) for k, n in histogram.items())
    total = sum(n for _, n in points)
    if not total:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for value, count in points:
        seen += count
        if seen >= rank:
            return value
    return points[-1][0]


def summarize_entries(
    entries: list[dict[str, Any]], *, memory: list[tuple[float, int]], warmup_s: float
) -> dict[str, float]:
    """The flat metrics ``batchqa gate`` compares, from Locust's JSON stats and the memory samples."""
    metrics: dict[str, float] = {}
    starts = [e["start_time"] for e in entries if e["num_requests"]]
    ends = [e["last_request_timestamp"] for e in entries if e["last_request_timestamp"]]
    duration = max(ends) - min(starts) if starts and ends else 0.0
    operations = failures = http_requests = prompts = completed = 0
    by_name = {(e["method"], e["name"]): e for e in entries}
    for entry in entries:
        method, name, count = entry["method"], entry["name"], entry["num_requests"]
        if names.is_operation(method, name):
            operations += count
            failures += entry["num_failures"]
        if method in names.HTTP_METHODS:
            http_requests += count
            key = f"{method} {name}"
            metrics[f"http_count[{key}]"] = count
            for label, fraction in PERCENTILES.items():
                if (value := percentile(entry["response_times"], fraction)) is not None:
                    metrics[f"http_{label}_ms[{key}]"] = value
        elif method == names.BATCH and (size := names.completed_size(name)) is not None:
            ok = count - entry["num_failures"]
            completed += ok
            prompts += ok * size
            metrics[f"batch_count[{size}]"] = ok
            metrics[f"batch_failures[{size}]"] = entry["num_failures"]
            for label, fraction in PERCENTILES.items():
                if (value := percentile(entry["response_times"], fraction)) is not None:
                    metrics[f"batch_{label}_s[{size}]"] = value / 1000
            if entry["num_requests"]:
                metrics[f"batch_max_s[{size}]"] = entry["max_response_time"] / 1000
    metrics["failure_ratio"] = failures / operations if operations else 0.0
    metrics["validation_failures"] = sum(
        e["num_failures"] for e in entries if e["method"] == names.BATCH and e["name"].startswith("validate")
    )
    metrics["batches_completed"] = completed
    if duration > 0:
        metrics["duration_s"] = duration
        metrics["http_rps"] = http_requests / duration
        metrics["prompts_per_min"] = prompts / duration * 60
    _socket_metrics(metrics, by_name, duration, names)
    _memory_metrics(metrics, memory, warmup_s)
    return metrics


def _socket_metrics(
    metrics: dict[str, float], by_name: dict[tuple[str, str], Any], duration: float, names: Any
) -> None:
    lag = by_name.get((names.WS, names.WS_LAG))
    gap = by_name.get((names.WS, names.WS_GAP))
    held = by_name.get((names.WS, names.WS_HELD))
    connect = by_name.get((names.WS, names.WS_CONNECT))
    if lag and lag["num_requests"]:
        for label, fraction in PERCENTILES.items():
            metrics[f"socket_lag_{label}_ms"] = percentile(lag["response_times"], fraction) or 0.0
        metrics["socket_lag_max_ms"] = lag["max_response_time"]
    if gap and gap["num_requests"]:
        metrics["socket_gap_p95_ms"] = percentile(gap["response_times"], 0.95) or 0.0
        metrics["socket_gap_p99_ms"] = percentile(gap["response_times"], 0.99) or 0.0
        metrics["socket_gap_max_ms"] = gap["max_response_time"]
        metrics["socket_messages"] = gap["num_requests"]
    if connect and connect["num_requests"]:
        metrics["socket_connects"] = connect["num_requests"]
        metrics["socket_connect_p95_ms"] = percentile(connect["response_times"], 0.95) or 0.0
    if held and duration > 0:
        metrics["sockets_open_avg"] = held["total_response_time"] / 1000 / duration
    failures = (
        ("socket_silences", names.WS_SILENCE),
        ("socket_order_errors", names.WS_ORDER),
        ("socket_missing_ranges", names.WS_MISSING),
    )
    for metric, entry_name in failures:
        entry = by_name.get((names.WS, entry_name))
        metrics[metric] = entry["num_failures"] if entry else 0


def _memory_metrics(metrics: dict[str, float], memory: list[tuple[float, int]], warmup_s: float) -> None:
    if not memory:
        return
    values = [v for _, v in memory]
    metrics["memory_start_mb"] = values[0] / MIB
    metrics["memory_peak_mb"] = max(values) / MIB
    metrics["memory_end_mb"] = values[-1] / MIB
    if (growth := memory_growth(memory, warmup_s)) is not None:
        metrics["memory_growth_mb"] = growth
