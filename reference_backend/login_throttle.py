"""Login throttling: after a few failed logins, further attempts wait out a short, growing, bounded lockout.

Failures are counted under three keys, each with its own threshold (OWASP Authentication Cheat Sheet,
"Login Throttling"): one account from one client address (guessing one password), one client address over
every account (password spraying), and one account over every address (guessing from many addresses). A
key over its threshold is locked for ``lockout_seconds``; each further lockout of the same key doubles
that, up to ``max_lockout_seconds``, so an attacker can delay a user by minutes at most, never lock them
out for good. A successful login clears its account's keys; a key with no failure for ``forget_seconds``
starts over. While any key of an attempt is locked the password is not even checked.

The counters live in this process: each API process throttles on its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Records kept at most; a flood of distinct addresses or emails cannot grow memory without bound.
MAX_RECORDS = 100_000


@dataclass
class _Record:
    failures: int = 0
    lockouts: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


@dataclass(frozen=True)
class ThrottleRules:
    per_account_and_address: int = 5
    per_address: int = 50
    per_account: int = 50
    lockout_seconds: float = 30.0
    max_lockout_seconds: float = 300.0
    forget_seconds: float = 900.0

    def __post_init__(self) -> None:
        for name in ("per_account_and_address", "per_address", "per_account"):
            if getattr(self, name) < 1:
                raise ValueError(f"login throttle threshold {name} must be at least 1")
        if not 0 < self.lockout_seconds <= self.max_lockout_seconds:
            raise ValueError("login lockout must be positive and at most the maximum lockout")


class LoginThrottle:
    """``wait_seconds`` before checking a password, ``failed``/``succeeded`` after; thread-safe."""

    def __init__(self, rules: ThrottleRules, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules
        self._clock = clock
        self._records: dict[tuple[str, ...], _Record] = {}
        self._lock = threading.Lock()

    def _keys(self, account: str, address: str) -> list[tuple[tuple[str, ...], int]]:
        rules = self.rules
        return [
            (("pair", account, address), rules.per_account_and_address),
            (("address", address), rules.per_address),
            (("account", account), rules.per_account),
        ]

    def wait_seconds(self, account: str, address: str) -> int:
        """Whole seconds until this account may try again from this address; 0 when it may try now."""
        now = self._clock()
        with self._lock:
            waits = [
                record.locked_until - now
                for key, _ in self._keys(account, address)
                if (record := self._records.get(key)) is not None
            ]
        longest = max(waits, default=0.0)
        return math.ceil(longest) if longest > 0 else 0

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._records) >= MAX_RECORDS:
                self._forget_idle(now)
            for key, threshold in self._keys(account, address):
                record = self._records.get(key)
                if record is None or now - record.last_failure > self.rules.forget_seconds:
                    record = self._records[key] = _Record()
                record.failures += 1
                record.last_failure = now
                if record.failures >= threshold:
                    lockout = self.rules.lockout_seconds * 2**record.lockouts
                    record.locked_until = now + min(lockout, self.rules.max_lockout_seconds)
                    record.lockouts += 1

    def succeeded(self, account: str, address: str) -> None:
        with self._lock:
            self._records.pop(("pair", account, address), None)
            self._records.pop(("account", account), None)

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, r in self._records.items() if now - r.last_failure > self.rules.forget_seconds]
        for key in idle:
            del self._records[key]
        if len(self._records) >= MAX_RECORDS:  # all recent: drop the oldest half
            oldest = sorted(self._records, key=lambda k: self._records[k].last_failure)
            for key in oldest[: len(oldest) // 2]:
                del self._records[key]
