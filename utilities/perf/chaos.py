"""Chaos for distributed mode: kill workers and API processes, restart Redis mid-batch, then audit the ledger.

``audit`` reads the reference backend's tables (batches, rows, provider_calls) with plain SQL and
says, row by row, whether anything was lost or stored twice; ``SocketWatcher`` stands in for the
UI on the progress socket; ``batchqa chaos --rounds N`` runs fault rounds against a local cluster
and ``batchqa scale-workers`` measures throughput with 1, 2, 4 worker processes.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import click
import websockets
from sqlalchemy import bindparam, create_engine, text
from websockets.sync.client import connect

from utilities.client.api import TERMINAL_STATUSES, BatchApi
from utilities.client.progress_messages import ws_url
from utilities.procs.services import Cluster, PostgresDatabase, RedisServer, ServiceUnavailable, WorkerProcess
from utilities.procs.topology import API, WORKER

log = logging.getLogger(__name__)

STORED = frozenset({"succeeded", "failed"})
ADVANCING = frozenset({"progress", "status", "completed", "error"})
FAULTS = ("kill_worker", "kill_api", "restart_redis")
POISON_PREFIX = "gave up after"


@dataclass
class LedgerReport:
    """What the ledger says about some batches: counts, re-runs and every inconsistency found."""

    batches: int = 0
    rows: int = 0
    calls: int = 0
    stored_results: int = 0
    reruns: int = 0
    retried_calls: int = 0
    lost_calls: int = 0
    discarded_calls: int = 0
    poison_rows: int = 0
    duplicates: int = 0
    lost_rows: int = 0
    found: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return list(self.found)

    def summary(self) -> str:
        return (
            f"{self.rows} rows, {self.calls} calls ({self.retried_calls} retries of failed rows, "
            f"{self.lost_calls} lost with a worker, {self.discarded_calls} discarded late), "
            f"{self.stored_results} stored; lost rows {self.lost_rows}, duplicated results {self.duplicates}, "
            f"poison {self.poison_rows}, problems {len(self.found)}"
        )


def workers_with_calls_in_flight(database_url: str, batch_id: str) -> set[str]:
    """The ids of the workers that hold an open ledger entry (a provider call not yet closed) of ``batch_id``."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT DISTINCT worker_id FROM provider_calls WHERE batch_id = :batch AND outcome IS NULL"),
                {"batch": batch_id},
            ).scalars()
            return set(found)
    finally:
        engine.dispose()


def a_worker_mid_call(cluster: Cluster, batch_id: str, rng: random.Random, *, timeout: float = 30.0) -> WorkerProcess:
    """A live worker (chosen by ``rng``) that has a call of ``batch_id`` in flight right now, polled from the
    ledger: a worker that has only just started may not have claimed anything yet, and killing it proves
    nothing about calls lost mid-flight."""
    deadline = time.monotonic() + timeout
    while True:
        busy = workers_with_calls_in_flight(cluster.database_url, batch_id)
        candidates = [w for w in cluster.workers if w.worker_id in busy]
        if candidates:
            return rng.choice(candidates)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no worker had a call of {batch_id} in flight within {timeout:.0f} s")
        time.sleep(0.05)  # a poll interval, not a synchronisation


def audit(database_url: str, batch_ids: Sequence[str], *, expect_terminal: bool = True) -> LedgerReport:
    """Check rows, counters and the provider-call ledger of ``batch_ids``.

    A row's stored results (ledger entries ``succeeded``/``failed``) may be failures followed by at
    most one success (a retry runs failed rows only); the row's state must be its last stored result;
    the batch counters must equal its rows' states; in a finished batch no row may be pending or
    running and no ledger entry open. A row failed as poison must show its lost attempts.
    """
    report = LedgerReport()
    ids = {"ids": list(batch_ids)}
    expanding = bindparam("ids", expanding=True)
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            batches = conn.execute(
                text("SELECT id, status, total, succeeded, failed, cancelled FROM batches WHERE id IN :ids").bindparams(
                    expanding
                ),
                ids,
            ).all()
            rows = conn.execute(
                text(
                    "SELECT batch_id, row_number, status, enhanced_prompt, error, lost_attempts FROM rows "
                    "WHERE batch_id IN :ids ORDER BY batch_id, row_number"
                ).bindparams(expanding),
                ids,
            ).all()
            calls = conn.execute(
                text(
                    "SELECT batch_id, row_number, attempt, outcome FROM provider_calls "
                    "WHERE batch_id IN :ids ORDER BY batch_id, row_number, attempt"
                ).bindparams(expanding),
                ids,
            ).all()
    finally:
        engine.dispose()
    by_row: dict[tuple[str, int], list[tuple[int, str | None]]] = {}
    for batch_id, number, attempt, outcome in calls:
        by_row.setdefault((batch_id, number), []).append((attempt, outcome))
    report.batches, report.rows, report.calls = len(batches), len(rows), len(calls)
    report.lost_calls = sum(1 for c in calls if c.outcome == "lost")
    report.discarded_calls = sum(1 for c in calls if c.outcome == "discarded")
    report.stored_results = sum(1 for c in calls if c.outcome in STORED)
    report.reruns = sum(max(len(entries) - 1, 0) for entries in by_row.values())
    report.retried_calls = sum(
        1 for entries in by_row.values() for before, _after in pairwise(entries) if before[1] == "failed"
    )
    missing = set(batch_ids) - {b.id for b in batches}
    report.found += [f"batch {b} does not exist" for b in sorted(missing)]
    rows_of: dict[str, list] = {}  # type: ignore[type-arg]
    for row in rows:
        rows_of.setdefault(row.batch_id, []).append(row)
    for batch in batches:
        _audit_batch(report, batch, rows_of.get(batch.id, []), by_row, expect_terminal=expect_terminal)
    return report


def _audit_batch(report, batch, rows, by_row, *, expect_terminal: bool) -> None:  # type: ignore[no-untyped-def]
    name = f"batch {batch.id[:8]}"
    terminal = batch.status in TERMINAL_STATUSES
    if expect_terminal and not terminal:
        report.found.append(f"{name} is {batch.status}, not finished")
    if len(rows) != batch.total:
        report.found.append(f"{name} has {len(rows)} rows for a total of {batch.total}")
    states = Counter(row.status for row in rows)
    for state in ("succeeded", "failed", "cancelled"):
        if states[state] != getattr(batch, state):
            report.found.append(f"{name} counts {getattr(batch, state)} {state} but {states[state]} rows are")
    if terminal:
        unsettled = [r.row_number for r in rows if r.status in ("pending", "running")]
        report.lost_rows += len(unsettled)
        if unsettled:
            report.found.append(f"{name} is {batch.status} but rows {unsettled[:10]} are still pending or running")
    for row in rows:
        entries = by_row.get((batch.id, row.row_number), [])
        stored = [outcome for _attempt, outcome in entries if outcome in STORED]
        if "succeeded" in stored and stored.index("succeeded") != len(stored) - 1:
            report.duplicates += 1
            report.found.append(f"{name} row {row.row_number}: a result stored after its success: {stored}")
        if terminal and any(outcome is None for _attempt, outcome in entries):
            report.found.append(f"{name} row {row.row_number}: a provider call still open in a finished batch")
        poison = row.status == "failed" and (row.error or "").startswith(POISON_PREFIX)
        if poison:
            report.poison_rows += 1
            lost = sum(1 for _attempt, outcome in entries if outcome == "lost")
            if lost < row.lost_attempts or row.lost_attempts < 1:
                report.found.append(f"{name} row {row.row_number}: failed as poison but the ledger shows {lost} lost")
        elif row.status in STORED and (not stored or stored[-1] != row.status):
            report.found.append(f"{name} row {row.row_number} is {row.status}; its stored results are {stored}")
        if row.status == "succeeded" and not row.enhanced_prompt:
            report.found.append(f"{name} row {row.row_number} succeeded without an enhanced prompt")


class SocketWatcher:
    """Stands in for the UI: follows a batch's progress socket, reconnecting with ``last_seq`` to any live API.

    Runs in a thread until a message carries a finished status. ``problems()`` lists a seq that went
    backwards, seqs that no message covered (each message covers ``from_seq``..``seq``; the ranges
    must join across reconnections, so a resumed connection's replay must start right after
    ``last_seq``), or no end.
    """

    def __init__(self, batch_id: str, token: str, urls: Callable[[], list[str]], *, timeout: float = 180.0) -> None:
        self.batch_id = batch_id
        self.token = token
        self.urls = urls
        self.timeout = timeout
        self.messages: list[dict] = []  # type: ignore[type-arg]
        self.connections = 0
        self.disconnects = 0
        self.terminal: dict | None = None  # type: ignore[type-arg]
        self.found: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{batch_id[:8]}", daemon=True)

    def start(self) -> SocketWatcher:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self._stop.set()

    def problems(self) -> list[str]:
        found = list(self.found)
        if self.terminal is None:
            found.append(f"the socket never showed batch {self.batch_id[:8]} finish ({self.connections} connections)")
        return found

    def _run(self) -> None:
        last_seq: int | None = None
        deadline = time.monotonic() + self.timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            urls = self.urls()
            if not urls:
                time.sleep(0.1)
                continue
            url = ws_url(urls[self.connections % len(urls)], self.batch_id, last_seq=last_seq, token=self.token)
            try:
                with connect(url, open_timeout=5, proxy=None) as ws:
                    self.connections += 1
                    resumed_from = last_seq
                    while not self._stop.is_set():
                        message = json.loads(ws.recv(timeout=5))  # heartbeats come every second
                        self.messages.append(message)
                        seq, from_seq = message["seq"], message.get("from_seq", message["seq"])
                        if message["type"] in ADVANCING:
                            if last_seq is not None and seq <= last_seq:
                                self.found.append(f"seq went from {last_seq} to {seq}")
                            elif last_seq is not None and from_seq > last_seq + 1:
                                where = "the replay after a reconnection" if resumed_from is not None else "live"
                                self.found.append(
                                    f"seqs {last_seq + 1}..{from_seq - 1} covered by no message ({where}, "
                                    f"next covered {from_seq}..{seq})"
                                )
                            last_seq, resumed_from = seq, None
                        elif message["type"] == "snapshot":
                            if resumed_from is not None and seq > resumed_from:
                                self.found.append(f"resumed after seq {resumed_from} but got a snapshot at {seq}")
                            last_seq, resumed_from = seq, None
                        elif last_seq is not None and seq > last_seq:
                            self.found.append(f"a heartbeat at seq {seq} after seqs covered only up to {last_seq}")
                        if message.get("status") in TERMINAL_STATUSES:
                            self.terminal = message
                            return
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException):
                self.disconnects += 1
                time.sleep(0.2)


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


def prompts(count: int, *, tag: str) -> str:
    topics = ("renewable energy", "sourdough baking", "time management", "city cycling", "quantum computing")
    return "\n".join(f"Write a short guide about {topics[i % len(topics)]}, {tag} part {i}" for i in range(count))


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


def _database(root: Path, use_sqlite: bool) -> tuple[str, PostgresDatabase | None]:
    if not use_sqlite:
        database = PostgresDatabase()
        if database.available() is None:
            return database.create(), database
        log.warning("PostgreSQL is not reachable; the chaos cluster uses SQLite")
    return f"sqlite:///{root / 'chaos.sqlite3'}", None


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
        database_url, database = _database(root, sqlite)
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
    database_url, database = _database(root, use_sqlite)
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


@click.group()
def _main() -> None:
    """``python -m utilities.perf.chaos chaos|scale``."""


_main.add_command(chaos_command)
_main.add_command(scale_command)

if __name__ == "__main__":
    _main()
