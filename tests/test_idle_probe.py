"""The idle probe: uploads timed one at a time on the idle target, each beside the reference request, and the
series the gate reads from them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.test_gate_paired import _write_run
from utilities.perf.gate_runs import read_runs
from utilities.perf.idle_probe import IDLE_FILE, UPLOAD_SERIES, idle_samples, run_idle_probe
from utilities.perf.live_probe import PAIRED_SUFFIX
from utilities.procs import BackendProcess

pytestmark = pytest.mark.area("Performance tooling")


def test_each_recorded_round_is_a_reference_an_upload_and_a_reference_all_answered(
    backend: BackendProcess, tmp_path: Path
) -> None:
    assert backend.url is not None
    path = run_idle_probe(backend.url, tmp_path / IDLE_FILE, rounds=4, warmup=1)

    table = pd.read_csv(path)
    assert table["round"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3], "warm-up rounds were recorded"
    assert table["part"].tolist() == ["reference", "upload", "reference"] * 4
    assert table["ok"].eq(1).all(), table[table["ok"] != 1]
    samples = idle_samples(path)
    uploads = table[table["part"] == "upload"]["ms"].to_numpy()
    references = table[table["part"] == "reference"]["ms"].to_numpy().reshape(4, 2).min(axis=1)
    assert samples[UPLOAD_SERIES] == pytest.approx(uploads)
    assert samples[UPLOAD_SERIES + PAIRED_SUFFIX] == pytest.approx(uploads / references)


def test_a_slow_request_path_shows_in_full_in_every_idle_upload(
    start_backend: Callable[..., BackendProcess], tmp_path: Path
) -> None:
    server = start_backend({"BATCHQA_FAULTS": "slow_requests=80"})
    assert server.url is not None

    samples = idle_samples(run_idle_probe(server.url, tmp_path / IDLE_FILE, rounds=3, warmup=0))

    assert min(samples[UPLOAD_SERIES]) >= 80, samples[UPLOAD_SERIES]


def test_each_upload_is_paired_with_the_faster_reference_and_failed_rounds_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / IDLE_FILE
    path.write_text(
        "round,part,ms,ok\n"
        "0,reference,4.0,1\n0,upload,20.0,1\n0,reference,6.0,1\n"
        "1,reference,4.0,1\n1,upload,30.0,0\n1,reference,6.0,1\n"
        "2,reference,5.0,0\n2,upload,25.0,1\n2,reference,5.0,1\n"
        "3,reference,2.0,1\n3,upload,33.0,1\n3,reference,4.0,1\n",
        encoding="utf-8",
    )

    samples = idle_samples(path)

    assert samples[UPLOAD_SERIES].tolist() == [20.0, 33.0]
    assert samples[UPLOAD_SERIES + PAIRED_SUFFIX].tolist() == [5.0, 16.5]


def test_a_run_with_an_idle_probe_carries_its_series_for_the_gate(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "run", np.random.default_rng(3))
    (run / IDLE_FILE).write_text(
        "round,part,ms,ok\n0,reference,4.0,1\n0,upload,20.0,1\n0,reference,6.0,1\n", encoding="utf-8"
    )

    (data,) = read_runs(run)

    assert data.samples[UPLOAD_SERIES].tolist() == [20.0]
    assert data.samples[UPLOAD_SERIES + PAIRED_SUFFIX].tolist() == [5.0]
    assert "POST /api/v1/batch/upload [50 prompts]" in data.samples, "the loaded series went missing"
