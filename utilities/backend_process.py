"""Start and stop the bundled reference backend as a child process on a free loopback port."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

_URL_LINE = re.compile(r"listening on (http://\S+)")


class BackendProcess:
    """``python -m reference_backend`` with its own data dir; the URL is the one the server printed.

    The server binds port 0 itself, so there is no window in which another process can take the
    port between choosing and binding it. Its output is kept (last lines) for failure reports.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.env = dict(env or {})
        self.host = host
        self.port = port
        self.log_path = log_path or self.data_dir / "server.log"
        self.url: str | None = None
        self.process: subprocess.Popen[str] | None = None
        self._tail: deque[str] = deque(maxlen=400)
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "BATCHQA_DATA_DIR": str(self.data_dir)}
        env["BATCHQA_HOST"] = self.host
        env["BATCHQA_PORT"] = str(self.port)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reference_backend"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        found = threading.Event()
        self._reader = threading.Thread(target=self._pump, args=(found,), daemon=True)
        self._reader.start()
        if not found.wait(timeout) or self.url is None:
            self.stop()
            raise RuntimeError(f"backend did not report its URL within {timeout:.0f} s:\n{self.output()}")
        self._wait_healthy(deadline=time.monotonic() + timeout)
        return self.url

    def _pump(self, found: threading.Event) -> None:
        assert self.process is not None and self.process.stdout is not None
        with open(self.log_path, "a", encoding="utf-8") as sink:
            for line in self.process.stdout:
                self._tail.append(line)
                sink.write(line)
                sink.flush()
                if self.url is None and (match := _URL_LINE.search(line)):
                    self.url = match.group(1)
                    found.set()
        found.set()

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

    def output(self) -> str:
        """The last lines the server wrote, for a failure message."""
        return "".join(self._tail)

    def stop(self, *, kill: bool = False, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful) or SIGKILL; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> BackendProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
