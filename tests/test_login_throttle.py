"""The login throttle's arithmetic with an injected clock: thresholds, growth, the bound, forgetting."""

from __future__ import annotations

import pytest

from reference_backend.login_throttle import LoginThrottle, ThrottleRules

pytestmark = pytest.mark.area("Security")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


RULES = ThrottleRules(
    per_account_and_address=3,
    per_address=10,
    per_account=20,
    lockout_seconds=30,
    max_lockout_seconds=100,
    forget_seconds=900,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> LoginThrottle:
    return LoginThrottle(RULES, clock=clock)


def test_the_lockout_starts_at_the_threshold_and_ends_on_time(throttle: LoginThrottle, clock: Clock) -> None:
    for _ in range(2):
        throttle.failed("a@x", "1.1.1.1")
    assert throttle.wait_seconds("a@x", "1.1.1.1") == 0
    throttle.failed("a@x", "1.1.1.1")
    assert throttle.wait_seconds("a@x", "1.1.1.1") == 30
    clock.now += 29.5
    assert throttle.wait_seconds("a@x", "1.1.1.1") == 1
    clock.now += 0.5
    assert throttle.wait_seconds("a@x", "1.1.1.1") == 0


def test_each_further_lockout_doubles_up_to_the_maximum(throttle: LoginThrottle, clock: Clock) -> None:
    waits = []
    for _ in range(3):
        throttle.failed("a@x", "1.1.1.1")
    for _ in range(4):
        waits.append(throttle.wait_seconds("a@x", "1.1.1.1"))
        clock.now += waits[-1]
        throttle.failed("a@x", "1.1.1.1")
    assert waits == [30, 60, 100, 100]


def test_success_clears_the_account_and_old_failures_are_forgotten(throttle: LoginThrottle, clock: Clock) -> None:
    for _ in range(2):
        throttle.failed("a@x", "1.1.1.1")
    throttle.succeeded("a@x", "1.1.1.1")
    for _ in range(2):
        throttle.failed("a@x", "1.1.1.1")
    assert throttle.wait_seconds("a@x", "1.1.1.1") == 0
    clock.now += 901
    for _ in range(2):
        throttle.failed("a@x", "1.1.1.1")
    assert throttle.wait_seconds("a@x", "1.1.1.1") == 0


def test_other_accounts_and_addresses_are_not_locked_by_one_pair(throttle: LoginThrottle) -> None:
    for _ in range(3):
        throttle.failed("a@x", "1.1.1.1")
    assert throttle.wait_seconds("a@x", "2.2.2.2") == 0
    assert throttle.wait_seconds("b@x", "1.1.1.1") == 0


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ThrottleRules(per_address=0)
    with pytest.raises(ValueError, match="at most the maximum"):
        ThrottleRules(lockout_seconds=60, max_lockout_seconds=30)
