"""``batchqa worker``: a worker process that drains the database queue, woken over Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import click
from prometheus_client import start_http_server

from . import faults
from .config import Settings
from .database import Store
from .metrics import Metrics
from .provider import provider_from_settings
from .redis_bus import RedisPublisher
from .redis_pubsub import RedisOutbox, WorkDoorbell, redacted
from .work_queue import new_worker_id, work_queue_from
from .worker_pool import WorkerPool

log = logging.getLogger(__name__)

# On SIGTERM, calls in flight get this long to finish before their rows are handed back.
DRAIN_SECONDS = 10.0


class WorkerConfigError(click.ClickException):
    """A setting the worker cannot run without."""


def run_worker(
    *,
    host: str | None = None,
    port: int | None = None,
    data_dir: str | Path | None = None,
    concurrency: int | None = None,
) -> None:
    """Run one worker process until SIGTERM/SIGINT; settings come from ``BATCHQA_*`` as for ``serve``.

    ``port`` (0 = a free one) serves ``/metrics`` on ``host``; without it the worker listens on nothing.
    """
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if data_dir is not None:
        overrides["data_dir"] = Path(data_dir)
    if concurrency is not None:
        overrides["worker_concurrency"] = concurrency
    settings = Settings(**overrides)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    faults.install(faults.parse_faults(settings.faults))
    if not settings.queue_url:
        raise WorkerConfigError(
            "batchqa worker needs BATCHQA_QUEUE_URL=redis://...: without Redis no API process would hear "
            "its progress (embedded mode runs the workers inside `batchqa serve` instead)"
        )
    asyncio.run(_work(settings, metrics_port=port))


async def _work(settings: Settings, *, metrics_port: int | None) -> None:
    assert settings.queue_url is not None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.sqlalchemy_url)
    await asyncio.to_thread(store.create_schema)
    metrics = Metrics()
    outbox = RedisOutbox(settings.queue_url)
    worker_id = new_worker_id()
    queue = work_queue_from(settings, store, worker_id=worker_id)
    provider = provider_from_settings(settings)
    pool = WorkerPool(queue, provider, RedisPublisher(outbox), metrics, concurrency=settings.worker_concurrency)
    doorbell = WorkDoorbell(settings.queue_url, outbox=outbox)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    metrics_server = None
    if metrics_port is not None:
        metrics_server, _thread = start_http_server(metrics_port, addr=settings.host, registry=metrics.registry)
        log.info("metrics on http://%s:%d/metrics", settings.host, metrics_server.server_port)
    await pool.start()
    listener = asyncio.create_task(doorbell.listen(pool.wake), name="batchqa-doorbell")
    print(
        f"batchqa worker {worker_id} ready: {settings.worker_concurrency} calls of "
        f"{settings.provider_batch_size} rows, queue {redacted(settings.queue_url)}, "
        f"database {redacted(settings.sqlalchemy_url)}",
        flush=True,
    )
    try:
        await stop.wait()
        log.info("stopping: letting calls in flight finish for up to %.0f s", DRAIN_SECONDS)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await pool.stop(drain_seconds=DRAIN_SECONDS)
        await asyncio.to_thread(outbox.close)
        if metrics_server is not None:
            metrics_server.shutdown()
        store.dispose()


@click.command("worker")
@click.option("--host", default=None, help="Interface for --port's /metrics (default 127.0.0.1, or BATCHQA_HOST).")
@click.option("--port", type=int, default=None, help="Serve /metrics on this port (0 = free); default: none.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="State directory (SQLite).")
@click.option("--concurrency", type=int, default=None, help="Provider calls in flight (BATCHQA_WORKER_CONCURRENCY).")
def worker_command(host: str | None, port: int | None, data_dir: str | None, concurrency: int | None) -> None:
    """Run a worker process: claims rows from the database, woken and heard over Redis (BATCHQA_QUEUE_URL)."""
    run_worker(host=host, port=port, data_dir=data_dir, concurrency=concurrency)


if __name__ == "__main__":
    worker_command()
