"""What the users share: custom stats entries, logging in, polling a batch and checking a download."""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import gevent
from gevent.lock import Semaphore
from locust.clients import HttpSession
from locust.env import Environment

from utilities.check.download_reader import load_download
from utilities.check.download_validator import validate
from utilities.check.input_reader import InputTable, read_input
from utilities.client.api import TERMINAL_STATUSES, Credentials
from utilities.perf.names import BATCH, validate_name

log = logging.getLogger(__name__)

T = TypeVar("T")

STATUS_NAME = "/api/v1/batch/status/[id]"
DOWNLOAD_NAME = "/api/v1/batch/download/[id]?format={fmt}"


class BatchFailed(Exception):
    """A batch did not end ``completed`` in time; recorded as a failed ``complete N`` entry."""


def record(
    environment: Environment,
    request_type: str,
    name: str,
    response_time_ms: float,
    *,
    length: int = 0,
    exception: BaseException | None = None,
) -> None:
    """Put one measurement into Locust's stats (the custom-client pattern of locust's xmlrpc example)."""
    environment.events.request.fire(
        request_type=request_type,
        name=name,
        response_time=response_time_ms,
        response_length=length,
        exception=exception,
        context={},
    )


def option(environment: Environment, name: str) -> Any:
    """A perf/locustfile.py option; workers receive the master's values with their first spawn message."""
    return getattr(environment.parsed_options, name)


def log_in(client: HttpSession, prefix: str) -> str:
    """Register a fresh account, log in, and speak with the bearer token from then on."""
    creds = Credentials.fresh(prefix)
    client.post("/api/v1/auth/register", json=creds.__dict__).raise_for_status()
    response = client.post("/api/v1/auth/login", json=creds.__dict__)
    response.raise_for_status()
    token = response.json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    client.cookies.clear()
    return token


class SharedAccount:
    """An account several users of one Locust process log in as, registered by whichever needs it first."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.token: str | None = None
        self._lock = Semaphore()

    def use(self, client: HttpSession) -> str:
        with self._lock:
            if self.token is None:
                self.token = log_in(client, self.prefix)
        client.headers["Authorization"] = f"Bearer {self.token}"
        return self.token


class AccountPool:
    """Hands every ``per_account`` users of a process the same account.

    A hundred sockets with a hundred accounts would spend the server's CPU on Argon2 hashes (about
    0.25 s and 64 MiB each) rather than on the progress pushes being measured; one account for all of
    them would be just as wrong the other way: the queue is fair per user, so a hundred batches of one
    user share one user's turn and wait behind everybody else's (nightly: 90 s for 100 prompts).
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.joined = 0
        self.accounts: list[SharedAccount] = []

    def join(self, per_account: int) -> SharedAccount:
        index = self.joined // max(1, per_account)
        self.joined += 1
        while len(self.accounts) <= index:
            self.accounts.append(SharedAccount(self.prefix))
        return self.accounts[index]


def upload(client: HttpSession, content: bytes, filename: str, *, variant: str = "") -> dict[str, Any]:
    """``variant`` (e.g. ``50 prompts``) goes with the request event, so per-request samples can tell
    uploads of different sizes apart while Locust's stats keep one entry for the endpoint."""
    response = client.post(
        "/api/v1/batch/upload",
        files={"file": (filename, content, "text/csv")},
        context={"variant": variant} if variant else {},
    )
    response.raise_for_status()
    return response.json()


def poll_until_terminal(client: HttpSession, batch_id: str, *, interval_s: float, timeout_s: float) -> dict[str, Any]:
    """Poll on a fixed grid (ticks missed during a slow response are skipped, not bunched up)."""
    started = time.monotonic()
    tick = started
    while True:
        response = client.get(f"/api/v1/batch/status/{batch_id}", name=STATUS_NAME)
        response.raise_for_status()
        status = response.json()
        if status["status"] in TERMINAL_STATUSES:
            return status
        now = time.monotonic()
        if now - started > timeout_s:
            raise BatchFailed(f"batch {batch_id} still {status['status']} after {timeout_s:.0f} s")
        tick += interval_s * max(1, math.ceil((now - tick) / interval_s))
        gevent.sleep(max(0.0, tick - now))


@functools.cache
def read_file(path: str) -> tuple[bytes, InputTable]:
    """The bytes of an upload and the table they hold, read once per process."""
    content = Path(path).read_bytes()
    return content, read_input(content, Path(path).name)


def off_hub(function: Callable[..., T], *args: Any) -> T:
    """Run CPU-heavy work in a real thread so the hub keeps delivering socket messages meanwhile.

    Parsing and checking a 1000-row download takes tens of milliseconds; done on the hub it would
    show up as lag on every socket of this process.
    """
    return gevent.get_hub().threadpool.apply(function, args)


def download_and_validate(
    environment: Environment, client: HttpSession, batch_id: str, table: InputTable, fmt: str
) -> None:
    """Download ``fmt`` (timed as HTTP), then check it (timed as ``validate fmt``, failing on a problem)."""
    response = client.get(
        f"/api/v1/batch/download/{batch_id}", params={"format": fmt}, name=DOWNLOAD_NAME.format(fmt=fmt)
    )
    if response.status_code != 200:
        return  # already a failed request in the stats
    started = time.perf_counter()
    report = off_hub(lambda data: validate(table, load_download(data, fmt)), response.content)
    problem = None if report.ok else AssertionError("; ".join([report.summary(), *report.problems()[:5]]))
    record(environment, BATCH, validate_name(fmt), (time.perf_counter() - started) * 1000, exception=problem)
    if problem:
        log.error("batch %s: %s", batch_id, problem)
