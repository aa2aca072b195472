"""What every black-box suite shares: the target (its URL, profile and, when bundled, its log), users, and skips."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from utilities.client.api import TERMINAL_STATUSES, BatchApi, Credentials
from utilities.client.profile import TargetProfile

# The bundled backend is slowed down so a batch takes visible time: 200 ms per provider call of 10 prompts,
# 2 calls in flight, about 100 prompts a second. 1000 prompts then take ~10 s, long enough to see several
# 2 s polls, an ETA that falls, and to pause or cancel; 10 prompts still finish at once. Its enhancer fails
# a prompt without letters or digits with a reason: the suites' failing prompt on demand.
BUNDLED_BACKEND_ENV = {
    "BATCHQA_PROVIDER_LATENCY_MS": "200",
    "BATCHQA_PROVIDER_BATCH_SIZE": "10",
    "BATCHQA_WORKER_CONCURRENCY": "2",
    # INFO, so the token checks read a log that holds the server's ordinary lines.
    "BATCHQA_LOG_LEVEL": "INFO",
    # Notifications: a failed delivery is retried within a second, not after up to 30 s.
    "BATCHQA_NOTIFY_RETRY_BASE_SECONDS": "0.2",
    "BATCHQA_NOTIFY_RETRY_MAX_SECONDS": "1",
}


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
    api = BatchApi(base_url)
    try:
        api.register(credentials)
        api.login(credentials)
    except BaseException:
        api.close()
        raise
    return User(credentials, api)


def cancel_unfinished(api: BatchApi) -> None:
    """A batch a test left running would share the target's workers with the next test: stop it."""
    listed = api.http.get("/api/v1/batch")
    if listed.status_code == 401:  # the test logged the user out: nothing of theirs can be reached any more
        return
    for batch in listed.json()["batches"]:
        if batch["status"] not in TERMINAL_STATUSES:
            # 409 when it finished meanwhile: that is fine too.
            api.action_raw(batch["batch_id"], "cancel")
