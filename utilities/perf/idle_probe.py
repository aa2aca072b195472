"""A probe run on the idle target before the load: rounds of a reference request (``GET /healthz``), the same
50-prompt upload a SocketUser makes, and, once that batch has finished, the reference again. Each sample goes
to ``idle.csv``.

Why a quiet phase: under load an upload waits for the CPU behind everything else the load does, so its median
moves between runs of the same code by a fifth or more, and only a large regression can be told from that.
Alone on the server, the same upload costs only the API's own work (parsing, storing the rows, the request
path), which moves little between runs, while an extra cost in that path shows in full. The reference on
either side of it cancels what the machine did at that moment (``idle_samples``): ``/healthz`` is outside
``/api/``, so the ``slow_requests`` fault does not delay it.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from utilities.client import BatchApi
from utilities.gen import GenSpec, generate
from utilities.perf.live_probe import PAIRED_SUFFIX

IDLE_FILE = "idle.csv"
UPLOAD_SERIES = "IDLE upload [50 prompts]"
PROMPTS = 50
SEED = 7  # the SocketUsers' file: the loaded and the idle upload carry the same bytes
WARMUP_ROUNDS = 3  # connections, caches and the first batch's tables warm up; not recorded
ROUNDS = 20
REFERENCE = "reference"
UPLOAD = "upload"
COLUMNS = ("round", "part", "ms", "ok")


def _timed(call: Callable[[], bool]) -> tuple[float, bool]:
    started = time.perf_counter()
    try:
        ok = bool(call())
    except httpx.HTTPError:
        ok = False
    return (time.perf_counter() - started) * 1000, ok


def _round(api: BatchApi, healthz: str, content: bytes) -> list[tuple[str, float, bool]]:
    """Reference, upload, the batch left to finish, reference: (part, ms, ok) of each timed request."""
    uploaded: dict[str, str] = {}

    def upload() -> bool:
        response = api.upload_raw(content=content, filename="idle-50.csv")
        if response.status_code == 202:
            uploaded["id"] = response.json()["batch_id"]
        return response.status_code == 202

    def reference() -> bool:
        return api.http.get(healthz).status_code == 200

    before = _timed(reference)
    during = _timed(upload)
    if "id" in uploaded:
        api.wait_until(uploaded["id"], timeout=60.0, interval=0.02)
    # After the batch ran: a reference taken while it starts would time its work too.
    after = _timed(reference)
    return [(REFERENCE, *before), (UPLOAD, *during), (REFERENCE, *after)]


def run_idle_probe(base_url: str, path: Path, *, rounds: int = ROUNDS, warmup: int = WARMUP_ROUNDS) -> Path:
    """``warmup`` + ``rounds`` rounds against ``base_url`` as a fresh user; writes ``path`` (``idle.csv``).

    A round whose batch does not finish within a minute raises ``TimeoutError``: the target is not idle, and
    the samples would say nothing about the request path."""
    content = generate(GenSpec(rows=PROMPTS, seed=SEED))
    healthz = f"{base_url.rstrip('/')}/healthz"
    rows: list[tuple[int, str, str, int]] = []
    with BatchApi.new_user(base_url, prefix="idle") as api:
        for number in range(-warmup, rounds):
            timed = _round(api, healthz, content)
            if number >= 0:
                rows += [(number, part, f"{ms:.3f}", int(ok)) for part, ms, ok in timed]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def idle_samples(path: Path) -> dict[str, np.ndarray]:
    """The idle uploads' times (``UPLOAD_SERIES``) and each divided by the faster of its round's two reference
    requests (``UPLOAD_SERIES`` + ``PAIRED_SUFFIX``); rounds with a failed request are left out.

    The faster one: other work (a timer, the collector, the last batch's notifications) only ever adds time to a
    reference, and a fifth of them meet some. Over fifteen smoke runs on a quiet 2-core machine the median of
    these ratios moved 0.029 (σ of log) between runs where the raw upload's median moved 0.074 and the ratio to
    the two references' mean 0.122."""
    table = pd.read_csv(path)
    good = table.groupby("round")["ok"].transform("min") == 1
    rounds = table[good].pivot_table(index="round", columns="part", values="ms", aggfunc="min")
    if rounds.empty or UPLOAD not in rounds or REFERENCE not in rounds:
        return {}
    uploads = rounds[UPLOAD].to_numpy(dtype=float)
    return {
        UPLOAD_SERIES: uploads,
        UPLOAD_SERIES + PAIRED_SUFFIX: uploads / rounds[REFERENCE].to_numpy(dtype=float),
    }
