"""Start and stop the bundled reference backend as a child process on a free loopback port."""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path

import httpx

from utilities.procs.child_process import ChildProcess

log = logging.getLogger(__name__)

_URL_LINE = re.compile(r"listening on (http://\S+)")

# How the black-box suites run the bundled backend: slowed down so a batch takes visible time (200 ms per
# provider call of 10 prompts, 2 calls in flight, about 100 prompts a second: 1000 prompts take ~10 s, long
# enough to pause, cancel or watch; 10 prompts still finish at once). Its enhancer fails a prompt without
# letters or digits with a reason: the suites' failing prompt on demand. Failed notification deliveries are
# retried within a second. ``batchqa selfcheck`` starts its faulty backends the same way.
E2E_BACKEND_ENV = {
    "BATCHQA_PROVIDER_LATENCY_MS": "200",
    "BATCHQA_PROVIDER_BATCH_SIZE": "10",
    "BATCHQA_WORKER_CONCURRENCY": "2",
    "BATCHQA_LOG_LEVEL": "INFO",
    "BATCHQA_NOTIFY_RETRY_BASE_SECONDS": "0.2",
    "BATCHQA_NOTIFY_RETRY_MAX_SECONDS": "1",
}


class BackendProcess(ChildProcess):
    """``python -m reference_backend`` with its own data dir; the URL is the one the server printed.

    The server binds port 0 itself, so there is no window in which another process can take the
    port between choosing and binding it. Its output is kept (last lines) for failure reports.
    """

    name = "backend"

    def __init__(
        self,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: Path | None = None,
    ) -> None:
        super().__init__(data_dir, env=env, log_path=log_path or Path(data_dir) / "server.log", tail_lines=400)
        self.host = host
        self.port = port
        self.url: str | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "reference_backend"]

    def child_env(self) -> dict[str, str]:
        env = super().child_env()
        env.update(BATCHQA_DATA_DIR=str(self.data_dir), BATCHQA_HOST=self.host, BATCHQA_PORT=str(self.port))
        return env

    def on_line(self, line: str) -> bool:
        if match := _URL_LINE.search(line):
            self.url = match.group(1)
            return True
        return False

    def start(self, timeout: float = 90.0) -> str:
        """Start and wait until healthy. The wait is generous: a loaded CI runner can take tens of seconds to
        import the app, and a start that never succeeds still fails, with the child's output."""
        if not self.spawn(timeout) or self.url is None:
            self.stop()
            raise RuntimeError(f"backend did not report its URL within {timeout:.0f} s:\n{self.output()}")
        self._wait_healthy(deadline=time.monotonic() + timeout)
        return self.url

    def _wait_healthy(self, deadline: float) -> None:
        assert self.url is not None
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or (self.process and self.process.poll() is not None):
                raise RuntimeError(f"backend at {self.url} never became healthy:\n{self.output()}")
            time.sleep(0.05)

    def __enter__(self) -> BackendProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
