"""``batchqa scale-workers``: the throughput of distributed mode with 1, 2, 4 ... worker processes against the
ceiling N·C·B / latency."""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import click

from utilities.client.api import BatchApi
from utilities.perf.cluster_inputs import cluster_database, prompts
from utilities.procs.services import Cluster, RedisServer

log = logging.getLogger(__name__)


def measure_throughput(
    root: Path,
    *,
    worker_counts: Sequence[int],
    prompt_count: int,
    batches: int,
    repeat: int,
    env: dict[str, str],
    use_sqlite: bool,
) -> dict[int, list[float]]:
    """Seconds from the first upload to the last batch completed, per number of worker processes.

    ``prompt_count`` prompts are split over ``batches`` batches of as many users, uploaded together.
    """
    redis = RedisServer(root / "redis")
    redis.start()
    database_url, database = cluster_database(root, use_sqlite)
    timings: dict[int, list[float]] = {}
    try:
        for count in worker_counts:
            with Cluster(root / f"x{count}", redis=redis, database_url=database_url, env=env) as cluster:
                cluster.start(workers=count, apis=1)
                users = [BatchApi.new_user(cluster.api_urls[0], "scale") for _ in range(batches)]
                try:
                    for _ in range(repeat):
                        started = time.monotonic()
                        ids = [
                            api.upload(text=prompts(prompt_count // batches, tag="scale"))["batch_id"] for api in users
                        ]
                        for api, batch in zip(users, ids, strict=True):
                            final = api.wait_until(batch, timeout=600, interval=0.05)
                            if final["status"] != "completed":
                                raise RuntimeError(f"batch ended {final['status']}: {final}")
                        timings.setdefault(count, []).append(time.monotonic() - started)
                finally:
                    for api in users:
                        api.close()
    finally:
        redis.stop()
        if database is not None:
            database.drop()
    return timings


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
    ceiling = concurrency * batch_size / (latency_ms / 1000)
    click.echo(
        f"{prompt_count} prompts in {batches} batch(es), latency {latency_ms:g} ms, "
        f"B={batch_size}, C={concurrency} per worker, {'SQLite' if sqlite else 'PostgreSQL if reachable'}"
    )
    click.echo("workers  median s  rows/s  ceiling rows/s  runs")
    for count, runs in timings.items():
        median = statistics.median(runs)
        click.echo(
            f"{count:7d}  {median:8.2f}  {prompt_count / median:6.0f}  {ceiling * count:14.0f}  "
            + " ".join(f"{r:.2f}" for r in runs)
        )


if __name__ == "__main__":
    scale_command()
