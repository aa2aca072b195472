"""Fixtures for the self-tests: a real bundled backend (uvicorn in a child process) and fresh users."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from utilities.client.api import BatchApi
from utilities.procs.backend import BackendProcess

# Service fixtures (redis_server, postgres_url, moto_server, s3_bucket, make_cluster) for the distributed tests.
from .conftest_services import *  # noqa: F403

# The property tests draw the same examples on every run, so `make test`'s verdict does not depend on which
# examples luck brings; HYPOTHESIS_PROFILE=explore draws new ones each run, to look for bugs.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

REAL_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "real"


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    """One default backend per test session (per xdist worker): zero latency, no failures."""
    server = BackendProcess(tmp_path_factory.mktemp("backend"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def slow_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    """A backend whose provider takes 100 ms per call with one call in flight: time to pause and cancel."""
    server = BackendProcess(
        tmp_path_factory.mktemp("slow-backend"),
        env={
            "BATCHQA_PROVIDER_LATENCY_MS": "100",
            "BATCHQA_PROVIDER_BATCH_SIZE": "5",
            "BATCHQA_WORKER_CONCURRENCY": "1",
        },
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def start_backend(tmp_path: Path) -> Iterator[Callable[..., BackendProcess]]:
    """Start a backend with its own settings for one test; every one started is stopped afterwards."""
    started: list[BackendProcess] = []

    def start(env: dict[str, str] | None = None, data_dir: Path | None = None) -> BackendProcess:
        server = BackendProcess(data_dir or tmp_path / f"backend-{len(started)}", env=env)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def make_api(backend: BackendProcess) -> Iterator[Callable[..., BatchApi]]:
    """``make_api()`` is a fresh registered user on the default backend (or on ``url``); all are closed."""
    clients: list[BatchApi] = []

    def make(url: str | None = None, *, prefix: str = "qa", register: bool = True) -> BatchApi:
        client = BatchApi.new_user(url or backend.url, prefix) if register else BatchApi(url or backend.url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def api(make_api: Callable[..., BatchApi]) -> BatchApi:
    return make_api()


@pytest.fixture
def slow_api(make_api: Callable[..., BatchApi], slow_backend: BackendProcess) -> BatchApi:
    return make_api(slow_backend.url)


@pytest.fixture
def real_prompts_csv() -> Path:
    path = REAL_DATA / "awesome-chatgpt-prompts-2025-01.csv"
    assert path.exists(), f"the real sample is missing: {path}"
    return path
