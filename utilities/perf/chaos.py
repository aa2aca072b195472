"""Chaos for distributed mode: kill workers and API processes, restart Redis mid-batch, then audit the ledger.

``audit`` reads the reference backend's tables (batches, rows, provider_calls) with plain SQL and
says, row by row, whether anything was lost or stored twice; ``SocketWatcher`` stands in for the
UI on the progress socket; ``batchqa chaos --rounds N`` runs fault rounds against a local cluster.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import click

from utilities.client.api import TERMINAL_STATUSES, BatchApi
from utilities.perf.cluster_inputs import cluster_database, prompts
from utilities.perf.ledger_audit import LedgerReport, audit
from utilities.perf.socket_watcher import SocketWatcher
from utilities.procs.services import Cluster, RedisServer, ServiceUnavailable
from utilities.procs.topology import API, WORKER

log = logging.getLogger(__name__)

log = logging.getLogger(__name__)

FAULTS = ("kill_worker", "kill_api", "restart_redis")


@dataclass
class RoundResult:
    number: int
    fault: str
    seconds: float
    ledger: LedgerReport
    socket_problems: list[str]
    small_first: bool
    retries: int
    final: list[str]

    def problems(self) -> list[str]:
        found = self.ledger.problems() + self.socket_problems
        if not self.small_first:
            found.append("the 10-row batch finished after the big one (fair scheduling)")
        return found


def _client(cluster: Cluster, token: str) -> BatchApi:
    urls = cluster.api_urls
    if not urls:
        raise RuntimeError("no API process is running")
    return BatchApi(urls[0], token=token)


def _status(cluster: Cluster, token: str, batch_id: str) -> dict:  # type: ignore[type-arg]
    """The batch's status from any live API process (one may be down on purpose)."""
    for _ in range(50):
        try:
            with _client(cluster, token) as api:
                return api.status(batch_id)
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"no API process answered for batch {batch_id}")


def run_round(
    cluster: Cluster,
    rng: random.Random,
    *,
    number: int,
    fault: str,
    prompt_count: int,
    max_retries: int = 10,
    timeout: float = 180.0,
) -> RoundResult:
    """Upload a big and a 10-row batch (two users), inject ``fault`` mid-batch, finish with retries, audit."""
    started = time.monotonic()
    url = cluster.api_urls[0]
    with BatchApi.new_user(url, "chaos-big") as big_user, BatchApi.new_user(url, "chaos-small") as small_user:
        big = big_user.upload(text=prompts(prompt_count, tag=f"r{number}"))["batch_id"]
        small = small_user.upload(text=prompts(10, tag=f"r{number}s"))["batch_id"]
        tokens = {big: big_user.token or "", small: small_user.token or ""}
    watcher = SocketWatcher(big, tokens[big], lambda: cluster.api_urls, timeout=timeout).start()
    finished_at: dict[str, float] = {}
    point = rng.uniform(0.1, 0.6) * prompt_count
    injected = False
    deadline = time.monotonic() + timeout
    while len(finished_at) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"round {number}: batches not finished after {timeout:.0f} s")
        for batch_id in (big, small):
            if (
                batch_id not in finished_at
                and _status(cluster, tokens[batch_id], batch_id)["status"] in TERMINAL_STATUSES
            ):
                finished_at[batch_id] = time.monotonic()
        if not injected and _status(cluster, tokens[big], big)["processed"] >= point:
            inject(cluster, rng, fault)
            injected = True
        time.sleep(0.05)
    retries = 0
    for batch_id in (big, small):
        for _ in range(max_retries):  # at a 30 % failure rate, ten retries leave ~1e-5 of a row failed
            if _status(cluster, tokens[batch_id], batch_id)["status"] not in ("completed_with_errors", "failed"):
                break
            with _client(cluster, tokens[batch_id]) as api:
                api.retry(batch_id)
                retries += 1
                api.wait_until(batch_id, timeout=timeout)
    watcher.join(timeout=30)
    return RoundResult(
        number=number,
        fault=fault if injected else f"{fault} (batch ended first)",
        seconds=time.monotonic() - started,
        ledger=audit(cluster.database_url, [big, small]),
        socket_problems=watcher.problems(),
        small_first=finished_at[small] <= finished_at[big],
        retries=retries,
        final=[_status(cluster, tokens[b], b)["status"] for b in (big, small)],
    )


def inject(cluster: Cluster, rng: random.Random, fault: str) -> None:
    """Kill -9 a worker or an API process (and start a replacement), or restart Redis."""
    if fault == "kill_worker":
        cluster.kill_worker(rng.choice(cluster.workers))
        cluster.start_worker()
    elif fault == "kill_api":
        cluster.kill_api(rng.choice(cluster.apis))
        cluster.start_api()
    elif fault == "restart_redis":
        cluster.redis.restart(kill=rng.random() < 0.5)
    else:
        raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")


@click.command("chaos")
@click.option("--rounds", type=int, default=10, show_default=True, help="Fault rounds to run.")
@click.option("--workers", type=int, default=WORKER.replicas, show_default=True, help="Worker processes.")
@click.option("--apis", type=int, default=API.replicas, show_default=True, help="API processes (at least 2).")
@click.option("--prompts", "prompt_count", type=int, default=300, show_default=True, help="Rows of the big batch.")
@click.option("--failure-rate", type=float, default=0.3, show_default=True, help="Provider failure rate.")
@click.option("--fault", "faults", multiple=True, type=click.Choice(FAULTS), help="Faults to draw from (default all).")
@click.option("--seed", type=int, default=None, help="Seed of the fault schedule (default: random, printed).")
@click.option("--sqlite", is_flag=True, help="Use SQLite even if PostgreSQL is reachable.")
@click.option("--report", type=click.Path(dir_okay=False), default=None, help="Write the rounds as JSON here.")
def chaos_command(
    rounds: int,
    workers: int,
    apis: int,
    prompt_count: int,
    failure_rate: float,
    faults: tuple[str, ...],
    seed: int | None,
    sqlite: bool,
    report: str | None,
) -> None:
    """Fault rounds against a local distributed cluster; exit 1 if any round lost or duplicated a row."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    click.echo(f"chaos: {rounds} rounds, {workers} workers, {apis} API processes, seed {seed}")
    env = {
        "BATCHQA_PROVIDER_LATENCY_MS": "200",
        "BATCHQA_PROVIDER_BATCH_SIZE": "5",
        "BATCHQA_WORKER_CONCURRENCY": "2",
        "BATCHQA_PROVIDER_FAILURE_RATE": str(failure_rate),
        "BATCHQA_PROVIDER_SEED": str(seed),
        "BATCHQA_LEASE_SECONDS": "2",
    }
    results: list[RoundResult] = []
    with tempfile.TemporaryDirectory(prefix="batchqa-chaos-") as tmp:
        root = Path(tmp)
        try:
            redis = RedisServer(root / "redis")
            redis.start()
        except ServiceUnavailable as exc:
            raise click.ClickException(str(exc)) from exc
        database_url, database = cluster_database(root, sqlite)
        cluster = Cluster(root, redis=redis, database_url=database_url, env=env)
        try:
            cluster.start(workers=workers, apis=max(apis, 2))
            for number in range(1, rounds + 1):
                result = run_round(
                    cluster, rng, number=number, fault=rng.choice(faults or FAULTS), prompt_count=prompt_count
                )
                results.append(result)
                verdict = "ok" if not result.problems() else "PROBLEMS"
                click.echo(
                    f"round {number:3d} {result.fault:<14} {result.seconds:5.1f} s  {verdict}: "
                    f"{result.ledger.summary()}; {result.retries} retries, final {'/'.join(result.final)}"
                )
                for problem in result.problems():
                    click.echo(f"    - {problem}")
        finally:
            cluster.stop()
            redis.stop()
            if database is not None:
                database.drop()
    failed = [r for r in results if r.problems()]
    totals = Counter(r.fault.split()[0] for r in results)
    click.echo(
        f"chaos: {len(results)} rounds ({dict(totals)}), {len(failed)} with problems; "
        f"{sum(r.ledger.rows for r in results)} rows, {sum(r.ledger.reruns for r in results)} re-runs, "
        f"{sum(r.ledger.lost_rows for r in results)} lost, {sum(r.ledger.duplicates for r in results)} duplicated, "
        f"{sum(r.ledger.poison_rows for r in results)} poison"
    )
    if report:
        Path(report).parent.mkdir(parents=True, exist_ok=True)
        Path(report).write_text(
            json.dumps(
                {
                    "seed": seed,
                    "rounds": [
                        {"number": r.number, "fault": r.fault, "seconds": round(r.seconds, 2), "retries": r.retries}
                        | {"final": r.final, "small_first": r.small_first}
                        | {k: v for k, v in vars(r.ledger).items() if k != "found"}
                        | {"problems": r.problems()}
                        for r in results
                    ],
                },
                indent=2,
            )
        )
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    chaos_command()
