"""Load profiles (smoke, nightly, soak): users per class, run time and the bundled backend's settings.

Plain data with no Locust import, so ``batchqa load`` (and the tests) can read it outside a gevent-patched
process, and the Locust files in ``perf/`` import it from here. ``locust_options`` is the single place a
profile becomes a command line, ``locust_conf`` the ``perf/<profile>.conf`` that plain ``locust --config``
reads; ``python -m utilities.perf.profiles`` writes those files again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from utilities.paths import PERF_DIR

LOCUSTFILE = PERF_DIR / "locustfile.py"
# A name relative to the kit, not a path: each Locust process (remote workers too) resolves it against its
# own copy of the kit (utilities.paths.kit_file).
DEFAULT_BATCH_FILE = "fixtures/files/valid-1000.csv"
# Where `batchqa serve` listens by default: the target of a plain `locust --config perf/<profile>.conf`.
DEFAULT_HOST = "http://127.0.0.1:8000"


@dataclass(frozen=True, kw_only=True)
class LoadProfile:
    """One load shape. Times in seconds; ``backend_env`` applies only to a backend the kit starts itself."""

    name: str
    description: str
    batch_users: int
    socket_users: int
    mixed_users: int
    run_time_s: int
    spawn_rate: float
    warmup_s: float
    batch_wait_s: float = 1.0
    socket_batch_size: int = 100
    socket_hold_s: float = 3.0
    socket_users_per_account: int = 10
    poll_interval_s: float = 0.5
    # When the run time is up, users finish the task in hand (a batch followed to its end) for up to this long,
    # so a slow machine makes a run longer, not a run without a finished 1000-prompt batch.
    stop_timeout_s: int = 120
    max_fail_ratio: float = 0.01
    backend_env: dict[str, str] = field(default_factory=dict)

    @property
    def users(self) -> int:
        return self.batch_users + self.socket_users + self.mixed_users

    def user_classes(self) -> list[str]:
        counts = {"BatchUser": self.batch_users, "SocketUser": self.socket_users, "MixedUser": self.mixed_users}
        return [name for name, count in counts.items() if count > 0]

    def with_overrides(self, **changes: object) -> LoadProfile:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# A provider that sleeps per call makes completion times depend on the queue's schedule rather than on
# how busy the shared CPU is, so run-to-run noise stays small enough to gate on. 50 ms per call of 10
# rows, 10 calls in flight: a lone 1000-prompt batch needs 10 waves = 0.5 s of provider time.
_PROVIDER = {
    "BATCHQA_PROVIDER_LATENCY_MS": "50",
    "BATCHQA_PROVIDER_BATCH_SIZE": "10",
    "BATCHQA_WORKER_CONCURRENCY": "10",
}

PROFILES: dict[str, LoadProfile] = {
    p.name: p
    for p in (
        LoadProfile(
            name="smoke",
            description="CI: 2 uploaders of 1000-prompt files, 2 mixed users, 10 sockets for 20 s (< 60 s in all).",
            batch_users=2,
            socket_users=10,
            mixed_users=2,
            run_time_s=20,
            # Light enough that the one-process backend is not saturated by the smoke itself (about 40% of a
            # core): latencies then measure service time, not a queue whose length swings from run to run.
            batch_wait_s=2.0,
            socket_batch_size=50,
            # 1.5 s of heartbeats after each batch (still more than one heartbeat period) rather than 3 s: about
            # twice the uploads per run, so the gate's upload rule has ~100 samples to judge a run by.
            socket_hold_s=1.5,
            # Five a second: the accounts' Argon2 hashes (about 0.3 s of CPU each) do not all queue at once.
            spawn_rate=5,
            warmup_s=8,  # logins (Argon2, 64 MiB each) are over by then even on a busy machine
            backend_env=_PROVIDER,
        ),
        LoadProfile(
            name="nightly",
            description="10 uploaders of 1000-prompt files, 100 held sockets and 5 mixed users for 10 minutes.",
            batch_users=10,
            socket_users=100,
            mixed_users=5,
            run_time_s=600,
            spawn_rate=10,
            warmup_s=60,
            socket_hold_s=10.0,
            backend_env=_PROVIDER,
        ),
        LoadProfile(
            name="soak",
            description="Half the nightly load for 2 hours: memory growth and slow drift.",
            batch_users=5,
            socket_users=50,
            mixed_users=3,
            run_time_s=7200,
            spawn_rate=5,
            warmup_s=300,
            batch_wait_s=5.0,
            socket_hold_s=30.0,
            backend_env=_PROVIDER,
        ),
    )
}


def locust_settings(profile: LoadProfile, *, batch_file: str | Path = DEFAULT_BATCH_FILE) -> dict[str, str]:
    """The perf/locustfile.py options that make ``profile``, by option name (no host, no output paths)."""
    options = _option_list(profile, batch_file)
    return {options[i].removeprefix("--"): options[i + 1] for i in range(0, len(options), 2)}


def locust_options(profile: LoadProfile, *, batch_file: str | Path = DEFAULT_BATCH_FILE) -> list[str]:
    """The perf/locustfile.py options and user classes that make ``profile`` (no host, no output paths)."""
    return [*_option_list(profile, batch_file), *profile.user_classes()]


def locust_conf(profile: LoadProfile) -> str:
    """``perf/<name>.conf``: the profile for ``locust --config``, run from the kit's root against ``batchqa serve``.

    No user classes are named: the locustfile drops the classes whose count is zero.
    """
    lines = [
        f"# {profile.name}: {profile.description}",
        f"# Run from the kit's root: locust --config perf/{profile.name}.conf [--host URL]",
        "# Written by `python -m utilities.perf.profiles` from utilities/perf/profiles.py; a test checks they agree.",
        "locustfile = perf/locustfile.py",
        "headless = true",
        f"host = {DEFAULT_HOST}",
        *(f"{name} = {value}" for name, value in locust_settings(profile).items()),
    ]
    return "\n".join(lines) + "\n"


def write_confs(directory: Path = PERF_DIR) -> list[Path]:
    written = []
    for profile in PROFILES.values():
        path = directory / f"{profile.name}.conf"
        path.write_text(locust_conf(profile), encoding="utf-8")
        written.append(path)
    return written


def _option_list(profile: LoadProfile, batch_file: str | Path) -> list[str]:
    return [
        "--users",
        str(profile.users),
        "--spawn-rate",
        f"{profile.spawn_rate:g}",
        "--run-time",
        f"{profile.run_time_s}s",
        "--batch-users",
        str(profile.batch_users),
        "--socket-users",
        str(profile.socket_users),
        "--mixed-users",
        str(profile.mixed_users),
        "--batch-file",
        str(batch_file),
        "--batch-wait",
        f"{profile.batch_wait_s:g}",
        "--socket-batch-size",
        str(profile.socket_batch_size),
        "--socket-hold",
        f"{profile.socket_hold_s:g}",
        "--socket-users-per-account",
        str(profile.socket_users_per_account),
        "--poll-interval",
        f"{profile.poll_interval_s:g}",
        "--max-fail-ratio",
        f"{profile.max_fail_ratio:g}",
        "--stop-timeout",
        f"{profile.stop_timeout_s}s",
    ]


if __name__ == "__main__":
    for written in write_confs():
        print(written)
