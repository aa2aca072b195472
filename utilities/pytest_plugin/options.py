"""The kit's command-line options: the target's profile, the mail and webhook sinks' addresses, and whether a
missing Redis/PostgreSQL/S3 service fails rather than skips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from utilities.client.profile import ProfileError, TargetProfile, load_profile

PROFILE = pytest.StashKey[TargetProfile]()
# The switch the service fixtures read; --require-services sets it, so both ways of asking mean the same.
REQUIRE_SERVICES_ENV = "BATCHQA_REQUIRE_SERVICES"
FIXTURE_PLUGINS = ("utilities.pytest_plugin.fixtures", "utilities.pytest_plugin.pages")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("batchqa", "batchqa black-box suites")
    group.addoption(
        "--target-profile",
        metavar="FILE",
        help="with --base-url: a JSON or TOML file declaring the target's optional capabilities and limits "
        "(e2e/README.md). A test skips only when the profile says a capability is absent.",
    )
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
    group.addoption(
        "--require-services",
        action="store_true",
        help=f"fail, rather than skip, a test whose Redis, PostgreSQL or S3 service is missing here "
        f"(as {REQUIRE_SERVICES_ENV}=1 does).",
    )


def services_required() -> bool:
    """Whether a missing backing service fails the test (``--require-services`` or the environment variable)."""
    return os.environ.get(REQUIRE_SERVICES_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("require_services", False):
        os.environ[REQUIRE_SERVICES_ENV] = "1"
    path = config.getoption("target_profile", None)
    if path is not None and not target_given(config):
        raise pytest.UsageError(
            "--target-profile describes a --base-url target; the bundled backend has every capability"
        )
    try:
        config.stash[PROFILE] = load_profile(Path(path)) if path else TargetProfile(name="bundled reference backend")
    except ProfileError as exc:
        raise pytest.UsageError(str(exc)) from exc
    for option in ("smtp_sink", "webhook_receiver"):
        address = config.getoption(option, None)
        if address is None:
            continue
        parse_address(address)  # a usage error now rather than in a fixture
        # One fixed address cannot be shared: each xdist worker would try to listen on it.
        if config.getoption("numprocesses", None) not in (None, 0, 1):
            flag = "--" + option.replace("_", "-")
            raise pytest.UsageError(f"{flag} listens on one fixed address: run without -n (or with -n 1)")
    for name in FIXTURE_PLUGINS:
        if not config.pluginmanager.has_plugin(name):
            config.pluginmanager.import_plugin(name)


def parse_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise pytest.UsageError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def target_given(config: pytest.Config) -> bool:
    """Whether ``--base-url`` (or the ini's ``base_url``) names a target, rather than the bundled backend."""
    return bool(config.getoption("base_url", None) or config.getini("base_url"))
