"""Real services on loopback for tests and chaos runs: redis-server, moto_server, PostgreSQL, worker processes."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from utilities.procs.backend import BackendProcess
from utilities.procs.child_process import ChildProcess, stop_process
from utilities.procs.ports import free_port
from utilities.procs.topology import API, WORKER

log = logging.getLogger(__name__)

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


class ServiceUnavailable(RuntimeError):
    """A service this machine does not have (binary missing, server not reachable); the message says which."""


def _wait_for(
    check: Callable[[], bool], what: str, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(0.05)


class RedisServer:
    """Our own ``redis-server`` (AOF on, fsync every second) in ``workdir``; ``restart()`` keeps port and data."""

    def __init__(self, workdir: Path, *, binary: str | None = None, appendonly: bool = True) -> None:
        self.workdir = Path(workdir)
        self.binary = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        self.appendonly = appendonly
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available(binary: str | None = None) -> str | None:
        """Why it cannot run here, or None."""
        path = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        return None if os.access(path, os.X_OK) else "redis-server is not installed (apt install redis-server)"

    @property
    def url(self) -> str:
        assert self.port is not None, "not started"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> str:
        if (reason := self.available(self.binary)) is not None:
            raise ServiceUnavailable(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # a free port can be taken between choosing and binding it; choose again
            self.port = self.port or free_port()
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--dir", str(self.workdir),
                    "--appendonly", "yes" if self.appendonly else "no",
                    "--appendfsync", "everysec",
                    "--save", "",
                    "--daemonize", "no",
                    "--logfile", str(self.workdir / "redis.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                _wait_for(self.ping, f"redis-server on port {self.port}", timeout, self.process)
                return self.url
            except RuntimeError:
                stop_process(self.process, kill=True, timeout=10.0)
                self.port = None
        raise RuntimeError(f"redis-server would not start; see {self.workdir / 'redis.log'}")

    def ping(self) -> bool:
        assert self.port is not None
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")

    def stop(self, *, kill: bool = False) -> None:
        stop_process(self.process, kill=kill, timeout=10.0)

    def restart(self, *, kill: bool = False, down_seconds: float = 0.0, timeout: float = 15.0) -> None:
        """Stop (SIGTERM, or SIGKILL) and start again on the same port with the same AOF."""
        port = self.port
        self.stop(kill=kill)
        time.sleep(down_seconds)
        self.port = port
        self.start(timeout)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class MotoServer:
    """moto's S3-compatible endpoint (``moto.server.ThreadedMotoServer``) on a free loopback port, in a thread of
    this process."""

    ACCESS_KEY = "batchqa-test"
    SECRET_KEY = "batchqa-test-secret"
    REGION = "us-east-1"

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.port: int | None = None
        self._server: Any = None

    @classmethod
    def available(cls) -> str | None:
        try:
            import moto.server  # noqa: F401
        except ImportError:
            return "moto's server is not installed (pip install 'moto[server]')"
        return None

    @property
    def endpoint_url(self) -> str:
        assert self.port is not None, "not started"
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        if reason := self.available():
            raise ServiceUnavailable(reason)
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        _host, self.port = self._server.get_host_and_port()
        return self.endpoint_url

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.REGION,
            aws_access_key_id=self.ACCESS_KEY,
            aws_secret_access_key=self.SECRET_KEY,
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"batchqa-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str) -> dict[str, str]:
        """The ``BATCHQA_*`` settings pointing a backend at ``bucket`` on this endpoint."""
        return {
            "BATCHQA_STORAGE_URL": f"s3://{bucket}",
            "BATCHQA_S3_ENDPOINT_URL": self.endpoint_url,
            "BATCHQA_S3_REGION": self.REGION,
            "BATCHQA_S3_ACCESS_KEY_ID": self.ACCESS_KEY,
            "BATCHQA_S3_SECRET_ACCESS_KEY": self.SECRET_KEY,
        }

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class PostgresDatabase:
    """A database ``batchqa_test_<random>`` on the machine's PostgreSQL, dropped (with its connections) on stop.

    The server comes from ``admin_url``, else ``DATABASE_URL``, else 127.0.0.1:5432 database ``test``.
    """

    def __init__(self, admin_url: str | None = None, *, prefix: str = "batchqa_test") -> None:
        from sqlalchemy.engine import make_url

        raw = admin_url or os.environ.get("DATABASE_URL") or DEFAULT_POSTGRES_URL
        self._admin = make_url(raw).set(drivername="postgresql")
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.created = False

    @property
    def url(self) -> str:
        """The SQLAlchemy URL (psycopg 3 driver) of the new database, for ``BATCHQA_DATABASE_URL``."""
        return self._admin.set(drivername="postgresql+psycopg", database=self.name).render_as_string(
            hide_password=False
        )

    def _connect(self):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(self._admin.render_as_string(hide_password=False), autocommit=True, connect_timeout=3)

    def available(self) -> str | None:
        try:
            with self._connect() as conn:
                conn.execute("SELECT 1")
        except Exception as exc:
            where = self._admin.render_as_string(hide_password=True)
            return f"PostgreSQL not reachable at {where} (set DATABASE_URL): {str(exc).strip().splitlines()[0]}"
        return None

    def create(self) -> str:
        if (reason := self.available()) is not None:
            raise ServiceUnavailable(reason)
        with self._connect() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.created = True
        return self.url

    def drop(self) -> None:
        if not self.created:
            return
        with self._connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.created = False

    def __enter__(self) -> PostgresDatabase:
        self.create()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.drop()


class WorkerProcess(ChildProcess):
    """``python -m reference_backend.worker`` with the given ``BATCHQA_*`` environment; ready when it says so.

    With ``metrics`` it serves ``/metrics`` on a free port, at ``metrics_url`` once ready.
    """

    def __init__(
        self, data_dir: Path, *, env: dict[str, str] | None = None, name: str = "worker", metrics: bool = False
    ) -> None:
        super().__init__(data_dir, env=env, log_path=Path(data_dir) / f"{name}.log", tail_lines=200)
        self.name = name
        self.metrics = metrics
        self.worker_id: str | None = None
        self.metrics_url: str | None = None

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "reference_backend.worker", "--data-dir", str(self.data_dir)]
        return [*command, "--port", "0"] if self.metrics else command

    def on_line(self, line: str) -> bool:
        if " metrics on http://" in line:
            self.metrics_url = line.split(" metrics on ", 1)[1].strip()
        if line.startswith("batchqa worker ") and " ready" in line:
            self.worker_id = line.split()[2]
            return True
        return False

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        self.worker_id = self.metrics_url = None
        if not self.spawn(timeout) or self.worker_id is None:
            self.stop(kill=True)
            raise RuntimeError(f"{self.name} did not report ready within {timeout:.0f} s:\n{self.output()}")
        return self

    def stop(self, *, kill: bool = False, timeout: float = 20.0) -> int | None:
        """SIGTERM (finishes or hands back its calls) or SIGKILL (leaves them to lapse); returns the exit code."""
        return super().stop(kill=kill, timeout=timeout)


class Cluster:
    """Distributed mode on one machine: worker and API processes sharing a Redis and a database.

    Each process gets its role's settings from ``topology`` (API processes run no rows, so every row is
    run by a worker process); all of them share one signing key, so any API process accepts any token.
    """

    def __init__(
        self,
        root: Path,
        *,
        redis: RedisServer,
        database_url: str,
        env: dict[str, str] | None = None,
        worker_metrics: bool = False,
    ) -> None:
        self.root = Path(root)
        self.worker_metrics = worker_metrics
        self.redis = redis
        self.database_url = database_url
        self.env = {
            "BATCHQA_QUEUE_URL": redis.url,
            "BATCHQA_DATABASE_URL": database_url,
            "BATCHQA_SECRET_KEY": uuid.uuid4().hex * 2,
            **(env or {}),
        }
        self.workers: list[WorkerProcess] = []
        self.apis: list[BackendProcess] = []
        self._started = 0

    def _dir(self, kind: str) -> Path:
        self._started += 1
        return self.root / f"{kind}-{self._started}"

    def start_worker(self, **extra_env: str) -> WorkerProcess:
        worker = WorkerProcess(
            self._dir("worker"), env={**WORKER.environment(self.env), **extra_env}, metrics=self.worker_metrics
        )
        self.workers.append(worker)
        return worker.start()

    def start_api(self, **extra_env: str) -> BackendProcess:
        api = BackendProcess(self._dir("api"), env={**API.environment(self.env), **extra_env})
        self.apis.append(api)
        api.start()
        return api

    def start(self, *, workers: int, apis: int) -> Cluster:
        """Start processes side by side (each takes a second or so to import and connect)."""
        with ThreadPoolExecutor(max_workers=workers + apis) as pool:
            started = [pool.submit(self.start_worker) for _ in range(workers)]
            started += [pool.submit(self.start_api) for _ in range(apis)]
            for future in started:
                future.result()
        return self

    @property
    def api_urls(self) -> list[str]:
        return [api.url for api in self.apis if api.url and api.process and api.process.poll() is None]

    def kill_worker(self, worker: WorkerProcess) -> None:
        worker.stop(kill=True)
        self.workers.remove(worker)

    def kill_api(self, api: BackendProcess) -> None:
        api.stop(kill=True)
        self.apis.remove(api)

    def stop(self) -> None:
        processes: list[WorkerProcess | BackendProcess] = [*self.apis, *self.workers]
        if processes:
            with ThreadPoolExecutor(max_workers=len(processes)) as pool:
                for process, future in [(p, pool.submit(p.stop)) for p in processes]:
                    if (error := future.exception()) is not None:
                        log.warning("stopping %s failed: %s", process, error)
        self.apis.clear()
        self.workers.clear()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
