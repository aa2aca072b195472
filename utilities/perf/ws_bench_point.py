"""One ws-bench point: the socket count, the server's memory per socket, lag and CPU figures, and the problems its
recordings showed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from utilities.client.cadence import percentile as _pct


@dataclass(frozen=True)
class Distribution:
    """Milliseconds: p50, p95, p99 and max over ``samples`` values."""

    samples: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of_seconds(cls, values: Sequence[float]) -> Distribution:
        ms = [v * 1000 for v in values]
        return cls(len(ms), _pct(ms, 50), _pct(ms, 95), _pct(ms, 99), max(ms) if ms else None)


@dataclass
class Point:
    """One measured socket count against one server (this checkout, or the one compared with)."""

    sockets: int
    server: str = "this checkout"
    busy_core: bool = False
    connected: int = 0
    connect_s: float | None = None
    rss_half_bytes: int | None = None  # server RSS with half the sockets held
    rss_all_bytes: int | None = None  # ... and with all of them
    memory_per_socket_bytes: float | None = None
    lag_ms: Distribution | None = None
    server_queue_ms: Distribution | None = None
    delivery_ms: Distribution | None = None
    max_gap_s: float | None = None
    terminal_received: int = 0
    messages: int = 0
    load_average: tuple[float, float] | None = None  # 1-minute load before and after: others share the CPUs
    streamed: int = 0  # messages the sockets received after the resume
    server_cpu_s: float | None = None  # server CPU time from the resume until every socket saw the end
    problems: list[str] = field(default_factory=list)
    lags_s: list[float] = field(default_factory=list, repr=False)

    @property
    def cpu_us_per_message(self) -> float | None:
        """Server CPU per message delivered: the fan-out cost of one socket, whatever else runs here."""
        if self.server_cpu_s is None or not self.streamed:
            return None
        return self.server_cpu_s / self.streamed * 1e6

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("lags_s")
        body["cpu_us_per_message"] = self.cpu_us_per_message
        return body
