"""Fixtures every black-box suite shares: the target (``--base-url`` or the bundled backend) and its profile
(``--target-profile``), fresh users, backends with settings of their own, and the kit's mail and webhook sinks.

Everything reaches the target through the contract (HTTP, WebSocket, UI); nothing here imports the backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import TypeVar

import pytest

from utilities.client.api import BatchApi
from utilities.procs.backend import BackendProcess
from utilities.procs.mailbox import Mailbox, WebhookReceiver

from .harness import BUNDLED_BACKEND_ENV, Target, User, new_user, registered_user, release
from .options import PROFILE, parse_address, target_given

NO_SMTP_SINK = (
    "needs the target's mail: pass --smtp-sink HOST:PORT (the kit's SMTP sink listens there) and configure "
    "the deployment to send its mail to that address"
)
NO_WEBHOOK_RECEIVER = (
    "needs the target to call the kit's webhook receiver: pass --webhook-receiver HOST:PORT, an address the kit "
    "can listen on and the deployment can reach"
)
# A backend starts in about a second; on a shared 2-core machine under heavy load it has taken over 30 s.
START_TIMEOUT_S = 120.0

_S = TypeVar("_S", Mailbox, WebhookReceiver)


def _sink(pytestconfig: pytest.Config, option: str, sink: type[_S]) -> _S | nullcontext[None]:
    """A sink at ``--<option>``, one on loopback for the bundled backend, or none for another target."""
    address = pytestconfig.getoption(option)
    if address is None and target_given(pytestconfig):
        return nullcontext()
    host, port = parse_address(address) if address else ("127.0.0.1", None)
    return sink(host, port)


@pytest.fixture(scope="session")
def mail_sink(pytestconfig: pytest.Config) -> Iterator[Mailbox | None]:
    """The SMTP sink the target mails to: always one for the bundled backend, else only at ``--smtp-sink``."""
    with _sink(pytestconfig, "smtp_sink", Mailbox) as box:
        yield box


@pytest.fixture(scope="session")
def webhook_sink(pytestconfig: pytest.Config) -> Iterator[WebhookReceiver | None]:
    """The kit's webhook receiver: on loopback for the bundled backend, else only at ``--webhook-receiver``."""
    with _sink(pytestconfig, "webhook_receiver", WebhookReceiver) as receiver:
        yield receiver


@pytest.fixture
def mailbox(mail_sink: Mailbox | None) -> Mailbox:
    """The sink, shared by the worker's tests: each test finds its own mail by batch id."""
    if mail_sink is None:
        pytest.skip(NO_SMTP_SINK)
    return mail_sink


@pytest.fixture
def webhook_receiver(webhook_sink: WebhookReceiver | None) -> WebhookReceiver:
    if webhook_sink is None:
        pytest.skip(NO_WEBHOOK_RECEIVER)
    return webhook_sink


@pytest.fixture(scope="session")
def bundled_backend(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory, mail_sink: Mailbox | None
) -> Iterator[BackendProcess | None]:
    """The bundled backend on a free port (one per xdist worker), or None when ``--base-url`` names the target.

    It mails to the session's sink, started first, so mail tests never skip against it. Extra settings for
    it (e.g. a fault to prove the suites catch it) come from ``BATCHQA_E2E_BACKEND_ENV``: ``K=V`` pairs
    separated by spaces.
    """
    if target_given(pytestconfig):
        yield None
        return
    assert mail_sink is not None, "the bundled backend always gets a mail sink"
    env = {
        **BUNDLED_BACKEND_ENV,
        "BATCHQA_SMTP_HOST": mail_sink.host,
        "BATCHQA_SMTP_PORT": str(mail_sink.port),
        **_extra_env(),
    }
    server = BackendProcess(tmp_path_factory.mktemp("e2e-backend"), env=env)
    server.start(timeout=START_TIMEOUT_S)
    try:
        yield server
    finally:
        server.stop()


def _extra_env() -> dict[str, str]:
    pairs = os.environ.get("BATCHQA_E2E_BACKEND_ENV", "").split()
    bad = [pair for pair in pairs if "=" not in pair]
    if bad:
        raise pytest.UsageError(f"BATCHQA_E2E_BACKEND_ENV wants K=V pairs, got {bad}")
    return dict(pair.split("=", 1) for pair in pairs)


@pytest.fixture(scope="session")
def base_url(pytestconfig: pytest.Config, bundled_backend: BackendProcess | None) -> str:
    """The target's URL: ``--base-url`` as given, else the bundled backend's."""
    if bundled_backend is None:
        return (pytestconfig.getoption("base_url") or pytestconfig.getini("base_url")).rstrip("/")
    Target.is_bundled = True
    assert bundled_backend.url is not None
    return bundled_backend.url


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config, base_url: str, bundled_backend: BackendProcess | None) -> Target:
    profile = pytestconfig.stash[PROFILE]
    if bundled_backend is not None:
        return Target(base_url, profile, bundled=True, server_log=bundled_backend.log_path)
    return Target(base_url, profile, bundled=False, server_log=profile.server_log)


@pytest.fixture
def start_backend(
    tmp_path_factory: pytest.TempPathFactory, bundled_backend: BackendProcess | None
) -> Iterator[Callable[..., BackendProcess]]:
    """A bundled backend of the test's own, with extra settings (closed registration, short tokens, ...).

    Only for the bundled target: a test against ``--base-url`` takes what it needs from the profile.
    """
    started: list[BackendProcess] = []

    def start(env: dict[str, str] | None = None) -> BackendProcess:
        assert bundled_backend is not None, "start_backend is for the bundled target only"
        server = BackendProcess(
            tmp_path_factory.mktemp("e2e-own-backend"), env={**BUNDLED_BACKEND_ENV, **_extra_env(), **(env or {})}
        )
        started.append(server)
        server.start(timeout=START_TIMEOUT_S)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def make_user(base_url: str) -> Iterator[Callable[..., BatchApi]]:
    """``make_user()`` registers and logs in a fresh user (on ``url``, default the target); all are cleaned up."""
    users: list[BatchApi] = []

    def make(url: str | None = None, prefix: str = "e2e") -> BatchApi:
        api = new_user(url or base_url, prefix).api
        users.append(api)
        return api

    yield make
    for api in users:
        release(api)


@pytest.fixture(scope="session")
def shared_api(base_url: str) -> Iterator[BatchApi]:
    """One user for the tests that neither list nor compare batches (a registration costs two password hashes)."""
    with registered_user(base_url, "shared") as registered:
        yield registered.api


@pytest.fixture
def api(make_user: Callable[..., BatchApi]) -> BatchApi:
    """A fresh user's session on the target."""
    return make_user()


@pytest.fixture
def user(base_url: str) -> Iterator[User]:
    """A new user per test, registered through the API, so tests never share batches."""
    with registered_user(base_url) as registered:
        yield registered
