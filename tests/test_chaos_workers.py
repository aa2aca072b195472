"""Chaos: workers killed with SIGKILL at random points mid-batch, again and again, lose and duplicate nothing."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest

from utilities.client.api import BatchApi
from utilities.perf.cluster_inputs import prompts
from utilities.perf.ledger_audit import a_worker_mid_call, audit
from utilities.procs.services import Cluster

pytestmark = [pytest.mark.distributed, pytest.mark.slow, pytest.mark.area("Chaos")]

# 3 workers x 2 calls x 5 rows per 200 ms: ~150 rows/s, so 300 rows leave room for three kills mid-batch;
# a 2 s lease puts a dead worker's rows back quickly (live workers renew theirs).
CHAOS_ENV = {
    "BATCHQA_PROVIDER_LATENCY_MS": "200",
    "BATCHQA_PROVIDER_BATCH_SIZE": "5",
    "BATCHQA_WORKER_CONCURRENCY": "2",
    "BATCHQA_LEASE_SECONDS": "2",
}


def test_workers_killed_at_random_points_lose_and_duplicate_no_row(make_cluster: Callable[..., Cluster]) -> None:
    seed = int(os.environ.get("BATCHQA_CHAOS_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    cluster = make_cluster(workers=3, apis=1, **CHAOS_ENV)
    url = cluster.api_urls[0]
    with BatchApi.new_user(url, "big") as big_user, BatchApi.new_user(url, "small") as small_user:
        big = big_user.upload(text=prompts(300, tag="kill"))["batch_id"]
        small = small_user.upload(text=prompts(10, tag="kill-small"))["batch_id"]
        for point in sorted(rng.uniform(0.05, 0.7) * 300 for _ in range(3)):
            if big_user.wait_for_progress(big, int(point))["processed"] >= 300:
                break
            # SIGKILL, no chance to hand rows back, to a worker with a call in flight (from the ledger), so
            # each kill loses a call whatever the machine's speed; the audit then proves nothing was lost.
            cluster.kill_worker(a_worker_mid_call(cluster, big, rng))
            cluster.start_worker()
        final = big_user.wait_until(big, timeout=120)
        assert small_user.wait_until(small, timeout=60)["status"] == "completed", f"seed {seed}"

    report = audit(cluster.database_url, [big, small])
    assert report.problems() == [], f"seed {seed}: {report.summary()}"
    assert report.lost_calls >= 1, f"seed {seed}: a kill of a worker mid-call left no lost call ({report.summary()})"
    # A row lost with three workers in a row is poison by design; anything else must have succeeded.
    assert final["succeeded"] + report.poison_rows == 300, f"seed {seed}: {final}"
