"""A child process of the kit's (backend, worker) whose output is logged, tailed and watched for readiness."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import deque
from pathlib import Path


def stop_process(
    process: subprocess.Popen[str] | subprocess.Popen[bytes] | None, *, kill: bool, timeout: float
) -> None:
    """SIGTERM (or SIGKILL) and wait; a process that ignores SIGTERM for ``timeout`` is killed."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


class ChildProcess:
    """Runs ``command`` with ``env`` on top of this environment; ready once ``on_line`` says so.

    Every line goes to ``log_path`` and the last ``tail_lines`` are kept for failure messages.
    Subclasses give the command and decide readiness from the output in ``on_line``.
    """

    name = "process"

    def __init__(self, data_dir: Path, *, env: dict[str, str] | None, log_path: Path, tail_lines: int) -> None:
        self.data_dir = Path(data_dir)
        self.env = dict(env or {})
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._reader: threading.Thread | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def child_env(self) -> dict[str, str]:
        return {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}

    def on_line(self, line: str) -> bool:
        """Look at one line of output; True once the process is ready."""
        raise NotImplementedError

    def spawn(self, timeout: float) -> bool:
        """Start the process and wait until it is ready; False if it was not within ``timeout``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(),
            env=self.child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        ready = threading.Event()
        self._reader = threading.Thread(target=self._pump, args=(self.process, ready), daemon=True)
        self._reader.start()
        return ready.wait(timeout)

    def _pump(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        with open(self.log_path, "a", encoding="utf-8") as sink:
            for line in process.stdout:
                self._tail.append(line)
                sink.write(line)
                sink.flush()
                if not ready.is_set() and self.on_line(line):
                    ready.set()
        ready.set()  # the process ended: whoever waits must stop waiting

    def output(self) -> str:
        """The last lines the process wrote, for a failure message."""
        return "".join(self._tail)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, kill: bool = False, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful) or SIGKILL; returns the exit code."""
        if self.process is None:
            return None
        stop_process(self.process, kill=kill, timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode
