"""Every request's time as it happened, one CSV line each, for the gate's distribution comparisons.

Locust keeps response times in a histogram rounded to two significant digits and aggregates them across
processes; the gate compares whole distributions, so each process that runs users also writes its own
exact samples to ``PREFIX.<pid>.csv``. ``utilities/perf/load.py`` joins the files after the run.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import IO, Any

COLUMNS = ("t", "type", "name", "variant", "ms", "ok")


class SampleWriter:
    """A ``request`` event listener that appends (time, type, name, variant, ms, ok) to this process's file;
    ``variant`` is the request context's, e.g. the prompts in an upload."""

    def __init__(self, prefix: str) -> None:
        self.path = Path(f"{prefix}.{os.getpid()}.csv")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] | None = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._handle)
        self._writer.writerow(COLUMNS)

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        **_kwargs: Any,
    ) -> None:
        if self._handle is None or response_time is None:
            return
        ok = 0 if exception else 1
        variant = (context or {}).get("variant", "")
        self._writer.writerow((f"{time.time():.3f}", request_type, name, variant, f"{response_time:.3f}", ok))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
