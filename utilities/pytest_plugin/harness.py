"""What every black-box suite shares: the target (its URL, profile and, when bundled, its log), users, and skips."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from utilities.client.api import TERMINAL_STATUSES, BatchApi, Credentials
from utilities.client.profile import TargetProfile
from utilities.procs.backend import E2E_BACKEND_ENV

BUNDLED_BACKEND_ENV = E2E_BACKEND_ENV
# A request answers in milliseconds; on a shared 2-core machine under heavy load answers have taken over 30 s
# (two Argon2 hashes per new user), which is the machine's speed, not a broken promise.
CLIENT_TIMEOUT_S = 120.0


@dataclass
class Target:
    """The target under test. ``server_log`` is known for the bundled backend or when the profile names it."""

    base_url: str
    profile: TargetProfile
    bundled: bool
    server_log: Path | None = None

    # Set once per process by the base_url fixture; the browser helpers read it without a fixture.
    is_bundled = False

    def require(self, capability: str) -> None:
        """Skip, with the profile's reason, when the target lacks ``capability``; the bundled backend has all."""
        if not self.profile.has(capability):
            if self.bundled:
                pytest.fail(
                    f"the bundled backend must have every capability, but: {self.profile.missing_reason(capability)}"
                )
            pytest.skip(self.profile.missing_reason(capability))


def http(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request without a session (no cookies kept), with the suites' timeout."""
    kwargs.setdefault("timeout", CLIENT_TIMEOUT_S)
    return httpx.request(method, url, **kwargs)


def lacks_capability(reason: str) -> None:
    """Skip for a foreign target that lacks what the test needs; fail for the bundled backend.

    The bundled backend is configured to have every capability (slowed batches, the socket), so there
    "missing" can only mean a regression, and a skip would hide it.
    """
    if Target.is_bundled:
        pytest.fail(f"the bundled backend should have this, but: {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class User:
    """A freshly registered user: its credentials (for the login page) and its own API session."""

    credentials: Credentials
    api: BatchApi


def new_user(base_url: str, prefix: str = "e2e") -> User:
    credentials = Credentials.fresh(prefix)
    api = BatchApi(base_url, timeout=CLIENT_TIMEOUT_S)
    try:
        api.register(credentials)
        api.login(credentials)
    except BaseException:
        api.close()
        raise
    return User(credentials, api)


@contextmanager
def registered_user(base_url: str, prefix: str = "e2e") -> Iterator[User]:
    """A fresh user for the ``with`` block; afterwards its unfinished batches are cancelled and its session closed."""
    user = new_user(base_url, prefix)
    try:
        yield user
    finally:
        release(user.api)


def release(api: BatchApi) -> None:
    """Cancel what ``api``'s user left running, then close the session (also when cancelling fails)."""
    try:
        cancel_unfinished(api)
    finally:
        api.close()


def cancel_unfinished(api: BatchApi) -> None:
    """A batch a test left running would share the target's workers with the next test: stop it."""
    listed = api.http.get("/api/v1/batch")
    if listed.status_code == 401:  # the test logged the user out: nothing of theirs can be reached any more
        return
    for batch in listed.json()["batches"]:
        if batch["status"] not in TERMINAL_STATUSES:
            # 409 when it finished meanwhile: that is fine too.
            api.action_raw(batch["batch_id"], "cancel")
