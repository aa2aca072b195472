"""Distributed mode end to end: worker and API processes on Redis with PostgreSQL (or SQLite) share the work."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from reference_backend.worker import worker_command
from utilities.client.api import TERMINAL_STATUSES, BatchApi
from utilities.perf.cluster_inputs import prompts
from utilities.perf.ledger_audit import audit
from utilities.perf.socket_watcher import SocketWatcher
from utilities.procs.services import Cluster, RedisServer

from .conftest_services import service_missing

pytestmark = [pytest.mark.distributed, pytest.mark.slow, pytest.mark.area("Distributed mode")]

SLOW = {"BATCHQA_PROVIDER_LATENCY_MS": "100", "BATCHQA_PROVIDER_BATCH_SIZE": "5", "BATCHQA_WORKER_CONCURRENCY": "2"}


def _sql(database_url: str, query: str, **params: object) -> list[tuple]:  # type: ignore[type-arg]
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query), params)]
    finally:
        engine.dispose()


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


def test_workers_share_a_batch_and_a_socket_on_another_api_process_sees_it_all(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(workers=2, apis=2, **SLOW)
    first_api, second_api = cluster.api_urls
    with BatchApi.new_user(first_api, "big") as big_user, BatchApi.new_user(second_api, "small") as small_user:
        big = big_user.upload(text=prompts(200, tag="big"))["batch_id"]
        watcher = SocketWatcher(big, big_user.token or "", lambda: [second_api]).start()
        small = small_user.upload(text=prompts(10, tag="small"))["batch_id"]

        assert small_user.wait_until(small, timeout=60)["status"] == "completed"
        assert big_user.status(big)["status"] not in TERMINAL_STATUSES, "the 10-row batch waited for the big one"
        assert big_user.wait_until(big, timeout=120)["status"] == "completed"
        watcher.join(timeout=30)
        assert watcher.problems() == []
        assert watcher.terminal is not None and watcher.terminal["succeeded"] == 200

        with BatchApi(second_api, token=big_user.token) as other:
            downloaded = other.download(big, "json")
    assert [r["row_number"] for r in json.loads(downloaded)["rows"]] == list(range(1, 201))
    report = audit(cluster.database_url, [big, small])
    assert report.problems() == []
    assert (report.stored_results, report.reruns) == (210, 0)
    workers = {w for (w,) in _sql(cluster.database_url, "SELECT DISTINCT worker_id FROM provider_calls")}
    assert workers == {w.worker_id for w in cluster.workers}, "rows ran outside the worker processes"


def test_pause_and_cancel_are_honoured_by_every_worker(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(workers=2, apis=1, **SLOW)
    running = "SELECT count(*) FROM rows WHERE batch_id = :b AND status = 'running'"
    calls = "SELECT count(*) FROM provider_calls WHERE batch_id = :b"
    with BatchApi.new_user(cluster.api_urls[0]) as api:
        batch = api.upload(text=prompts(200, tag="pause"))["batch_id"]
        api.wait_for_progress(batch, 20)
        api.pause(batch)
        _wait_for(lambda: _sql(cluster.database_url, running, b=batch)[0][0] == 0, "calls in flight finishing")
        paused, claimed = api.status(batch), _sql(cluster.database_url, calls, b=batch)[0][0]
        time.sleep(1.5)  # three idle polls of every worker: none may claim a row of a paused batch
        assert api.status(batch)["processed"] == paused["processed"] < 200
        assert _sql(cluster.database_url, calls, b=batch)[0][0] == claimed
        api.resume(batch)
        assert api.wait_until(batch, timeout=120)["status"] == "completed"

        doomed = api.upload(text=prompts(200, tag="cancel"))["batch_id"]
        api.wait_for_progress(doomed, 20)
        api.cancel(doomed)
        _wait_for(lambda: _sql(cluster.database_url, running, b=doomed)[0][0] == 0, "cancelled calls finishing")
        final = api.status(doomed)
    assert final["status"] == "cancelled" and final["processed"] + final["cancelled"] == 200
    assert audit(cluster.database_url, [batch, doomed]).problems() == []


def test_redis_queue_with_sqlite_works_on_one_machine(redis_server: RedisServer, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    with Cluster(tmp_path / "cluster", redis=redis_server, database_url=database_url, env=SLOW) as cluster:
        cluster.start(workers=2, apis=1)
        with BatchApi.new_user(cluster.api_urls[0]) as api:
            batch = api.upload(text=prompts(100, tag="sqlite"))["batch_id"]
            assert api.wait_until(batch, timeout=120)["status"] == "completed"
    report = audit(database_url, [batch])
    assert report.problems() == [] and report.stored_results == 100


def test_missing_service_fails_instead_of_skipping_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHQA_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match=r"no redis-server here.*BATCHQA_REQUIRE_SERVICES"):
        service_missing("no redis-server here")
    monkeypatch.setenv("BATCHQA_REQUIRE_SERVICES", "")
    with pytest.raises(pytest.skip.Exception, match="no redis-server here"):
        service_missing("no redis-server here")


def test_worker_without_a_queue_url_refuses_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BATCHQA_QUEUE_URL", raising=False)
    result = CliRunner().invoke(worker_command, ["--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "BATCHQA_QUEUE_URL" in result.output
