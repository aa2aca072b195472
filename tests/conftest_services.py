"""Fixtures for tests that need real services: our redis-server and moto S3 endpoint, a throwaway PostgreSQL database.

A service this machine lacks skips the test with the reason; with ``BATCHQA_REQUIRE_SERVICES=1`` (set by
``.ci/run``) it fails it instead. Test modules take these with ``from .conftest_services import *``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from utilities.procs.services import Cluster, MotoServer, PostgresDatabase, RedisServer

__all__ = ["make_cluster", "moto_server", "postgres_url", "redis_server", "s3_bucket", "service_missing"]


def service_missing(reason: str) -> NoReturn:
    """Skip, or fail when services are required: CI must not pass by skipping what it is meant to test."""
    if os.environ.get("BATCHQA_REQUIRE_SERVICES", "").strip().lower() in {"1", "true", "yes", "on"}:
        pytest.fail(f"{reason} (BATCHQA_REQUIRE_SERVICES is set, so a missing service fails)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (AOF on), on a free loopback port."""
    if (reason := RedisServer.available()) is not None:
        service_missing(reason)
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL (``DATABASE_URL``, else 127.0.0.1:5432), dropped afterwards."""
    database = PostgresDatabase()
    if (reason := database.available()) is not None:
        service_missing(reason)
    database.create()
    yield database.url
    database.drop()


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3 endpoint (in a thread) on a free port, shared by a module's tests (each takes its own bucket)."""
    if (reason := MotoServer.available()) is not None:
        service_missing(reason)
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> str:
    return moto_server.create_bucket()


@pytest.fixture
def make_cluster(tmp_path: Path, redis_server: RedisServer, postgres_url: str) -> Iterator[Callable[..., Cluster]]:
    """``make_cluster(workers=2, apis=1, **env)``: worker and API processes on this test's Redis and database."""
    clusters: list[Cluster] = []

    def make(*, workers: int = 2, apis: int = 1, database_url: str | None = None, **env: str) -> Cluster:
        cluster = Cluster(
            tmp_path / f"cluster-{len(clusters)}",
            redis=redis_server,
            database_url=database_url or postgres_url,
            env=env,
        )
        clusters.append(cluster)
        return cluster.start(workers=workers, apis=apis)

    yield make
    for cluster in clusters:
        cluster.stop()
