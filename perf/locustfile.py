"""Locust entry point for US-003: BatchUser, SocketUser and MixedUser (see perf/README.md).

Headless: ``batchqa load --profile smoke``; with Locust alone, from the kit's root:
``locust --config perf/smoke.conf`` (one ``.conf`` per profile), or
``locust -f perf/locustfile.py --headless --host URL --users 14 --spawn-rate 20 --run-time 20s
--batch-users 2 --socket-users 10 --mixed-users 2 BatchUser SocketUser MixedUser``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from locust import events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

# Locust imports this file by path; the users live in the perf package beside it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perf.samples import SampleWriter
from perf.users.batch_user import BatchUser
from perf.users.mixed_user import MixedUser
from perf.users.socket_user import SocketUser
from utilities.perf.names import BATCH, HTTP_METHODS, is_operation
from utilities.perf.profiles import DEFAULT_BATCH_FILE

log = logging.getLogger(__name__)

__all__ = ["BatchUser", "MixedUser", "SocketUser"]


@events.init_command_line_parser.add_listener
def _options(parser: LocustArgumentParser) -> None:
    group = parser.add_argument_group("batchqa", "US-003 scenario (each also read from its BATCHQA_LOAD_* variable)")
    add = group.add_argument
    add("--batch-users", type=int, default=1, env_var="BATCHQA_LOAD_BATCH_USERS", help="BatchUsers (fixed count).")
    add("--socket-users", type=int, default=0, env_var="BATCHQA_LOAD_SOCKET_USERS", help="SocketUsers (fixed count).")
    add("--mixed-users", type=int, default=0, env_var="BATCHQA_LOAD_MIXED_USERS", help="MixedUsers (fixed count).")
    add(
        "--batch-file",
        default=DEFAULT_BATCH_FILE,
        env_var="BATCHQA_LOAD_BATCH_FILE",
        help="BatchUser's upload: a path, or a name under the kit (fixtures/files/valid-1000.csv) or its samples.",
    )
    add("--batch-wait", type=float, default=1.0, env_var="BATCHQA_LOAD_BATCH_WAIT", help="Seconds between batches.")
    add(
        "--progress",
        choices=("auto", "socket", "poll"),
        default="auto",
        env_var="BATCHQA_LOAD_PROGRESS",
        help="How Batch/MixedUsers follow a batch; auto = socket, polling if the server refuses it.",
    )
    add("--poll-interval", type=float, default=0.5, env_var="BATCHQA_LOAD_POLL_INTERVAL", help="Seconds per poll.")
    add(
        "--socket-batch-size",
        type=int,
        default=100,
        env_var="BATCHQA_LOAD_SOCKET_BATCH_SIZE",
        help="Prompts per batch.",
    )
    add(
        "--socket-users-per-account",
        type=int,
        default=10,
        env_var="BATCHQA_LOAD_SOCKET_USERS_PER_ACCOUNT",
        help="SocketUsers that log in as one account (the queue is fair per user, not per batch).",
    )
    add(
        "--socket-hold",
        type=float,
        default=3.0,
        env_var="BATCHQA_LOAD_SOCKET_HOLD",
        help="Seconds a SocketUser keeps listening (heartbeats) after the terminal status.",
    )
    add(
        "--max-silence",
        type=float,
        default=5.0,
        env_var="BATCHQA_LOAD_MAX_SILENCE",
        help="A socket silent this long fails (the contract promises a message at least every 2 s).",
    )
    add("--batch-timeout", type=float, default=300.0, env_var="BATCHQA_LOAD_BATCH_TIMEOUT", help="Seconds per batch.")
    add(
        "--max-fail-ratio",
        type=float,
        default=0.01,
        env_var="BATCHQA_LOAD_MAX_FAIL_RATIO",
        help="Exit 1 when more of the operations fail (requests, socket opens, batches).",
    )
    add(
        "--samples",
        default="",
        env_var="BATCHQA_LOAD_SAMPLES",
        help="Write every request's exact time to PREFIX.<pid>.csv (each process that runs users).",
    )


@events.init.add_listener
def _fixed_counts(environment: Environment, **_kwargs: object) -> None:
    # The master (or the only process) dispatches users, so its options decide the counts.
    options = environment.parsed_options
    if options is None:
        return
    BatchUser.fixed_count = options.batch_users
    SocketUser.fixed_count = options.socket_users
    MixedUser.fixed_count = options.mixed_users
    # Locust reads fixed_count 0 as "spawn by weight", so a class asked for 0 times is dropped instead. A
    # worker keeps every class: it spawns whatever the master's counts ask for.
    if not isinstance(environment.runner, WorkerRunner):
        environment.user_classes[:] = [user for user in environment.user_classes if user.fixed_count > 0]
        if not environment.user_classes:
            raise ValueError("every user count is 0: give --batch-users, --socket-users or --mixed-users")
        log.info("user classes: %s", ", ".join(f"{u.__name__}={u.fixed_count}" for u in environment.user_classes))
    if options.samples and not isinstance(environment.runner, MasterRunner):
        writer = SampleWriter(options.samples)
        environment.events.request.add_listener(writer.on_request)
        environment.events.quitting.add_listener(lambda **_kw: writer.close())


def run_problems(environment: Environment, max_fail_ratio: float) -> list[str]:
    """Why this run should exit non-zero: wrong downloads, too many failures, or no batch finished."""
    problems = []
    operations = failures = 0
    completed = 0
    for (name, method), entry in environment.stats.entries.items():
        if is_operation(method, name):
            operations += entry.num_requests
            failures += entry.num_failures
        if method == BATCH and name.startswith("validate") and entry.num_failures:
            problems.append(f"{entry.num_failures} {name} check(s) found a wrong download")
        if method == BATCH and name.startswith("complete"):
            completed += entry.num_requests - entry.num_failures
    if operations and failures / operations > max_fail_ratio:
        problems.append(
            f"{failures} of {operations} operations failed ({failures / operations:.2%} > {max_fail_ratio:.2%})"
        )
    http = sum(e.num_requests for (_, m), e in environment.stats.entries.items() if m in HTTP_METHODS)
    if http and not completed:
        problems.append("no batch completed")
    return problems


@events.quitting.add_listener
def _verdict(environment: Environment, **_kwargs: object) -> None:
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    options = environment.parsed_options
    problems = run_problems(environment, options.max_fail_ratio)
    for problem in problems:
        log.error("load check failed: %s", problem)
    # Failures within --max-fail-ratio pass; a failed check exits with Locust's own --exit-code-on-error.
    environment.process_exit_code = options.exit_code_on_error if problems else 0
