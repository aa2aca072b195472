"""``batchqa scale-workers``: the throughput of distributed mode with 1, 2, 4 ... worker processes against the
ceiling N·C·B / latency, and against the schedule the prompts allow.

The ceiling assumes every slot always busy; a batch of P prompts needs ceil(P / (N·C·B)) rounds of calls, so
1000 prompts on 4 workers (40 slots of 10 rows) take 3 rounds however fast the rest is: the schedule. The
machine's CPU share during each run tells whether the CPU, rather than the provider, set the pace; the workers'
mean claim (which the next round's calls wait for) and store times, read from their ``/metrics``, tell what the
database work between rounds cost.
"""

from __future__ import annotations

import logging
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import astuple, dataclass, replace
from pathlib import Path

import click
import httpx

from utilities.client.api import BatchApi
from utilities.perf.cluster_inputs import cluster_database, prompts
from utilities.perf.host_load import CpuShare
from utilities.perf.server_memory import metrics_value
from utilities.procs.services import Cluster, RedisServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolTimes:
    """The workers' claims and stores so far, from their ``/metrics``: total seconds and how many."""

    claim_s: float = 0.0
    claims: float = 0.0
    store_s: float = 0.0
    stores: float = 0.0

    def __add__(self, other: PoolTimes) -> PoolTimes:
        return PoolTimes(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def __sub__(self, other: PoolTimes) -> PoolTimes:
        return PoolTimes(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def claim_ms(self) -> float:
        """A claim's mean time: the calls of the next round wait for it."""
        return 1000 * self.claim_s / self.claims if self.claims else 0.0

    @property
    def store_ms(self) -> float:
        return 1000 * self.store_s / self.stores if self.stores else 0.0


def pool_times(exposition: str) -> PoolTimes:
    """The claim and store histograms' sums and counts in one worker's ``/metrics`` text."""
    names = ("claim_seconds_sum", "claim_seconds_count", "store_seconds_sum", "store_seconds_count")
    return PoolTimes(*(metrics_value(exposition, f"batchqa_{name}") or 0.0 for name in names))


def scrape_pool_times(cluster: Cluster) -> PoolTimes:
    """Every worker's claims and stores so far, added up."""
    total = PoolTimes()
    for worker in cluster.workers:
        if worker.metrics_url is None:
            raise RuntimeError(f"{worker.name} serves no /metrics")
        total += pool_times(httpx.get(worker.metrics_url, timeout=10).text)
    return total


@dataclass(frozen=True)
class Timing:
    """One run: seconds from the first upload accepted (202) to the last batch seen completed, the share of all the
    machine's cores that were busy meanwhile (0..1, everything on the machine), how long the first upload took
    (parsing and storing its rows: not part of the pipeline's time), and the workers' claims and stores."""

    seconds: float
    machine_cpu: float
    upload_s: float
    pool: PoolTimes = PoolTimes()


@dataclass(frozen=True)
class Point:
    """The runs with one number of workers, against the ceiling and the schedule."""

    workers: int
    runs: tuple[Timing, ...]
    prompts: int
    latency_s: float
    slots_rows: int  # C·B: rows in flight per worker

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def rate(self) -> float:
        return self.prompts / self.seconds

    @property
    def ceiling(self) -> float:
        return self.workers * self.slots_rows / self.latency_s

    @property
    def schedule_s(self) -> float:
        return math.ceil(self.prompts / (self.workers * self.slots_rows)) * self.latency_s

    @property
    def machine_cpu(self) -> float:
        return statistics.median(r.machine_cpu for r in self.runs)

    @property
    def upload_s(self) -> float:
        return statistics.median(r.upload_s for r in self.runs)

    @property
    def claim_ms(self) -> float:
        return statistics.median(r.pool.claim_ms for r in self.runs)

    @property
    def store_ms(self) -> float:
        return statistics.median(r.pool.store_ms for r in self.runs)

    def row(self) -> str:
        return (
            f"{self.workers:7d}  {self.seconds:8.2f}  {self.rate:6.0f}  {self.ceiling:7.0f} "
            f"{self.rate / self.ceiling:5.0%}  {self.schedule_s:10.2f} {self.schedule_s / self.seconds:5.0%}  "
            f"{self.machine_cpu:11.0%}  {self.claim_ms:8.1f}  {self.store_ms:8.1f}  {self.upload_s:8.2f}  "
            + " ".join(f"{r.seconds:.2f}" for r in self.runs)
        )


HEADER = "workers  median s  rows/s  ceiling share  schedule s share  machine CPU  claim ms  store ms  upload s  runs"
POLL_INTERVAL_S = 0.02


def measure_throughput(
    root: Path,
    *,
    worker_counts: Sequence[int],
    prompt_count: int,
    batches: int,
    repeat: int,
    env: dict[str, str],
    use_sqlite: bool,
) -> dict[int, list[Timing]]:
    """Each run's time from the first upload accepted to the last batch seen completed (polling every 20 ms), per
    number of worker processes.

    ``prompt_count`` prompts are split over ``batches`` batches of as many users, uploaded one after another: the
    workers start on the first while the others upload.
    """
    redis = RedisServer(root / "redis")
    redis.start()
    database_url, database = cluster_database(root, use_sqlite)
    timings: dict[int, list[Timing]] = {}
    try:
        for count in worker_counts:
            with Cluster(
                root / f"x{count}", redis=redis, database_url=database_url, env=env, worker_metrics=True
            ) as cluster:
                cluster.start(workers=count, apis=1)
                users = [BatchApi.new_user(cluster.api_urls[0], "scale") for _ in range(batches)]
                try:
                    for _ in range(repeat):
                        before = scrape_pool_times(cluster)
                        timing = one_run(users, prompt_count // batches)
                        timing = replace(timing, pool=scrape_pool_times(cluster) - before)
                        timings.setdefault(count, []).append(timing)
                        click.echo(f"{count} worker(s): {timing.seconds:.2f} s, machine CPU {timing.machine_cpu:.0%}")
                finally:
                    for api in users:
                        api.close()
    finally:
        redis.stop()
        if database is not None:
            database.drop()
    return timings


def one_run(users: Sequence[BatchApi], prompts_each: int) -> Timing:
    """Each user uploads ``prompts_each`` prompts, one after another; the clock starts at the first 202."""
    texts = [prompts(prompts_each, tag="scale") for _ in users]
    cpu = CpuShare()
    sent = time.monotonic()
    ids = [users[0].upload(text=texts[0])["batch_id"]]
    uploaded = time.monotonic()
    cpu.sample()
    ids += [api.upload(text=text)["batch_id"] for api, text in zip(users[1:], texts[1:], strict=True)]
    for api, batch in zip(users, ids, strict=True):
        final = api.wait_until(batch, timeout=600, interval=POLL_INTERVAL_S)
        if final["status"] != "completed":
            raise RuntimeError(f"batch ended {final['status']}: {final}")
    seconds = time.monotonic() - uploaded
    cpu.sample()
    share = cpu.metrics()
    busy = (share["host_own_cores"] + share["host_other_cores"]) / share["host_cpus"]
    return Timing(seconds, min(busy, 1.0), uploaded - sent)


@click.command("scale")
@click.option("--workers", "worker_counts", default="1,2,4", show_default=True, help="Worker process counts.")
@click.option("--prompts", "prompt_count", type=int, default=1000, show_default=True)
@click.option("--batches", type=int, default=1, show_default=True, help="Split the prompts over this many users.")
@click.option("--latency-ms", type=float, default=200, show_default=True, help="Provider latency per call.")
@click.option("--batch-size", type=int, default=10, show_default=True, help="Rows per provider call (B).")
@click.option("--concurrency", type=int, default=10, show_default=True, help="Calls in flight per worker (C).")
@click.option("--repeat", type=int, default=3, show_default=True)
@click.option("--sqlite", is_flag=True, help="Use SQLite even if PostgreSQL is reachable.")
def scale_command(
    worker_counts: str,
    prompt_count: int,
    batches: int,
    latency_ms: float,
    batch_size: int,
    concurrency: int,
    repeat: int,
    sqlite: bool,
) -> None:
    """Throughput of distributed mode with 1, 2, 4 ... worker processes (median of --repeat runs)."""
    logging.basicConfig(level=logging.WARNING)
    env = {
        "BATCHQA_PROVIDER_LATENCY_MS": str(latency_ms),
        "BATCHQA_PROVIDER_BATCH_SIZE": str(batch_size),
        "BATCHQA_WORKER_CONCURRENCY": str(concurrency),
    }
    counts = [int(c) for c in worker_counts.split(",")]
    with tempfile.TemporaryDirectory(prefix="batchqa-scale-") as tmp:
        timings = measure_throughput(
            Path(tmp),
            worker_counts=counts,
            prompt_count=prompt_count,
            batches=batches,
            repeat=repeat,
            env=env,
            use_sqlite=sqlite,
        )
    click.echo(
        f"{prompt_count} prompts in {batches} batch(es), latency {latency_ms:g} ms, "
        f"B={batch_size}, C={concurrency} per worker, {'SQLite' if sqlite else 'PostgreSQL if reachable'}"
    )
    click.echo(HEADER)
    for count, runs in timings.items():
        click.echo(Point(count, tuple(runs), prompt_count, latency_ms / 1000, concurrency * batch_size).row())


if __name__ == "__main__":
    scale_command()
