"""Browser suite fixtures: the target (``--base-url`` or the bundled backend), Chromium, a fresh user per test,
and the kit's own SMTP sink and webhook receiver for the notification tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from page_objects import (
    BatchListPage,
    BatchUploadPage,
    LoginPage,
    NotificationBell,
    NotificationPreferencesPage,
    ProgressTracker,
    ResultsDownloader,
)
from utilities.client.api import TERMINAL_STATUSES, BatchApi, Credentials
from utilities.procs.backend import BackendProcess
from utilities.procs.browser import SYSTEM_ARGS, Chromium, find_chromium
from utilities.procs.mailbox import Mailbox, WebhookReceiver

from .support import Target, User

# The bundled backend is slowed down so a batch takes visible time: 200 ms per provider call of 10 prompts,
# 2 calls in flight, about 100 prompts a second. 1000 prompts then take ~10 s, long enough to see several
# 2 s polls, an ETA that falls, and to pause or cancel from the page; 10 prompts still finish at once.
BUNDLED_BACKEND_ENV = {
    "BATCHQA_PROVIDER_LATENCY_MS": "200",
    "BATCHQA_PROVIDER_BATCH_SIZE": "10",
    "BATCHQA_WORKER_CONCURRENCY": "2",
    "BATCHQA_LOG_LEVEL": "WARNING",
    # Notifications (issue 7): a failed delivery is retried within a second, not after up to 30 s.
    "BATCHQA_NOTIFY_RETRY_BASE_SECONDS": "0.2",
    "BATCHQA_NOTIFY_RETRY_MAX_SECONDS": "1",
}

NO_SMTP_SINK = (
    "needs the target's mail: pass --smtp-sink HOST:PORT (the kit's SMTP sink listens there) and configure "
    "the deployment to send its mail to that address"
)
NO_WEBHOOK_RECEIVER = (
    "needs the target to call the kit's webhook receiver: pass --webhook-receiver HOST:PORT, an address the kit "
    "can listen on and the deployment can reach"
)

SESSION_COOKIE = "batchqa_session"  # docs/contract.md, "Auth"
CHROMIUM = pytest.StashKey[Chromium | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("batchqa", "batchqa browser suite")
    group.addoption(
        "--smtp-sink",
        metavar="HOST:PORT",
        help="with --base-url: run the kit's SMTP sink on HOST:PORT; the target must mail there. "
        "Without it, tests that read mail are skipped. The bundled backend always gets its own sink.",
    )
    group.addoption(
        "--webhook-receiver",
        metavar="HOST:PORT",
        help="with --base-url: run the kit's webhook receiver on HOST:PORT, reachable by the target. "
        "Without it, webhook tests are skipped. The bundled backend always reaches one on loopback.",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Failure artefacts for the browser suite by default, as if run with --tracing retain-on-failure
    # --screenshot only-on-failure; an explicit --tracing/--screenshot (even "off") is left alone.
    for option, value in (("tracing", "retain-on-failure"), ("screenshot", "only-on-failure")):
        if getattr(config.option, option, None) == "off" and not _given(config, f"--{option}"):
            setattr(config.option, option, value)
    # Read from files only (no Playwright driver is started), so configuring stays cheap.
    config.stash[CHROMIUM] = find_chromium()
    for option in ("smtp_sink", "webhook_receiver"):
        address = config.getoption(option, None)
        if address is None:
            continue
        _address(address)  # a usage error now rather than in a fixture
        # One fixed address cannot be shared: each xdist worker would try to listen on it.
        if config.getoption("numprocesses", None) not in (None, 0, 1):
            flag = "--" + option.replace("_", "-")
            raise pytest.UsageError(f"{flag} listens on one fixed address: run without -n (or with -n 1)")


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise pytest.UsageError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def _target_given(config: pytest.Config) -> bool:
    return bool(config.getoption("base_url") or config.getini("base_url"))


def _given(config: pytest.Config, flag: str) -> bool:
    """Whether ``flag`` was passed on the command line or in PYTEST_ADDOPTS (ini addopts set the value itself)."""
    words = [*config.invocation_params.args, *os.environ.get("PYTEST_ADDOPTS", "").split()]
    return any(word == flag or word.startswith(f"{flag}=") for word in words)


@pytest.fixture(scope="session")
def browser_type_launch_args(
    browser_type_launch_args: dict[str, Any], browser_name: str | None, pytestconfig: pytest.Config
) -> dict[str, Any]:
    """The system's Chromium when the browser is Chromium and Playwright's own build is missing; otherwise
    (``--browser firefox``, a machine that ran ``playwright install``) untouched."""
    chromium = pytestconfig.stash[CHROMIUM]
    if browser_name not in (None, "chromium") or chromium is None or chromium.kind == "playwright":
        return browser_type_launch_args
    args = [*browser_type_launch_args.get("args", []), *SYSTEM_ARGS]
    return {**browser_type_launch_args, "executable_path": str(chromium.path), "args": args}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    # A fixed viewport unless --device gave one: the device's own size and scale win.
    return {"viewport": {"width": 1280, "height": 900}, **browser_context_args, "accept_downloads": True}


@pytest.fixture(scope="session")
def mail_sink(pytestconfig: pytest.Config) -> Iterator[Mailbox | None]:
    """The SMTP sink the target mails to: always one for the bundled backend, else only at ``--smtp-sink``."""
    address = pytestconfig.getoption("smtp_sink")
    if address is None and _target_given(pytestconfig):
        yield None
        return
    host, port = _address(address) if address else ("127.0.0.1", None)
    with Mailbox(host, port) as box:
        yield box


@pytest.fixture(scope="session")
def webhook_sink(pytestconfig: pytest.Config) -> Iterator[WebhookReceiver | None]:
    """The kit's webhook receiver: on loopback for the bundled backend, else only at ``--webhook-receiver``."""
    address = pytestconfig.getoption("webhook_receiver")
    if address is None and _target_given(pytestconfig):
        yield None
        return
    host, port = _address(address) if address else ("127.0.0.1", None)
    with WebhookReceiver(host, port) as receiver:
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
def base_url(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory, mail_sink: Mailbox | None
) -> Iterator[str]:
    """The target: ``--base-url`` as given, else the bundled backend on a free port (one per xdist worker).

    The bundled backend mails to the session's sink, started first, so mail tests never skip against it.
    """
    if _target_given(pytestconfig):
        yield (pytestconfig.getoption("base_url") or pytestconfig.getini("base_url")).rstrip("/")
        return
    assert mail_sink is not None, "the bundled backend always gets a mail sink"
    Target.bundled = True
    env = {**BUNDLED_BACKEND_ENV, "BATCHQA_SMTP_HOST": mail_sink.host, "BATCHQA_SMTP_PORT": str(mail_sink.port)}
    server = BackendProcess(tmp_path_factory.mktemp("e2e-backend"), env=env)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def user(base_url: str) -> Iterator[User]:
    """A new user per test, registered through the API, so tests never share batches."""
    credentials = Credentials.fresh("e2e")
    api = BatchApi(base_url)
    try:
        api.register(credentials)
        api.login(credentials)
        yield User(credentials, api)
        _cancel_unfinished(api)
    finally:
        api.close()


def _cancel_unfinished(api: BatchApi) -> None:
    """A batch a test left running would share the target's workers with the next test: stop it."""
    for batch in api.list_batches():
        if batch["status"] not in TERMINAL_STATUSES:
            # 409 when it finished meanwhile: that is fine too.
            api.action_raw(batch["batch_id"], "cancel")


@pytest.fixture
def signed_in_page(page: Page, user: User, base_url: str) -> Page:
    """A page whose context holds the user's session, as after a login.

    The contract's login sets the HttpOnly cookie ``batchqa_session`` to the bearer token it returns, so the
    token of the user's API login is put into the cookie jar directly: one password check per test, not two
    (Argon2 is slow on purpose). The login page itself is covered by the happy-path test.
    """
    page.context.add_cookies(
        [
            {
                "name": SESSION_COOKIE,
                "value": user.api.token or "",
                "url": base_url,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )
    return page


@pytest.fixture
def login_page(page: Page) -> LoginPage:
    return LoginPage(page)


@pytest.fixture
def upload_page(signed_in_page: Page) -> BatchUploadPage:
    upload = BatchUploadPage(signed_in_page)
    upload.open()
    return upload


@pytest.fixture
def tracker(signed_in_page: Page) -> ProgressTracker:
    return ProgressTracker(signed_in_page)


@pytest.fixture
def downloader(signed_in_page: Page, tmp_path: Path) -> ResultsDownloader:
    return ResultsDownloader(signed_in_page, tmp_path / "downloads")


@pytest.fixture
def batch_list(signed_in_page: Page) -> BatchListPage:
    return BatchListPage(signed_in_page)


@pytest.fixture
def bell(signed_in_page: Page) -> NotificationBell:
    return NotificationBell(signed_in_page)


@pytest.fixture
def preferences_page(signed_in_page: Page) -> NotificationPreferencesPage:
    return NotificationPreferencesPage(signed_in_page)
