"""SocketUser: holds a progress socket to a batch of its own and reports lag and gaps."""

from __future__ import annotations

import functools
import time

import gevent
from locust import HttpUser, task
from requests import RequestException

from perf.users.common import AccountPool, BatchFailed, option, record, upload
from perf.users.progress import SocketBroken, SocketRefused, watch
from utilities.gen import GenSpec, generate
from utilities.perf.names import BATCH, WS, WS_CONNECT, complete_name

RETRY_AFTER_S = 1.0


@functools.cache
def _prompts(size: int) -> bytes:
    return generate(GenSpec(rows=size, seed=7))


class SocketUser(HttpUser):
    """Upload a small batch, hold its socket through every push up to the terminal status and
    ``--socket-hold`` seconds of heartbeats after it, close, and start over.

    Every ``--socket-users-per-account`` SocketUsers of a process share an account (see
    ``AccountPool``): a socket only needs a batch its user owns. A refused socket is a failed
    ``WS connect``; the batch's time to its terminal status, as the socket saw it, is a
    ``complete N`` entry.
    """

    pool = AccountPool("load-socket")

    def on_start(self) -> None:
        self.account = self.pool.join(option(self.environment, "socket_users_per_account"))

    def wait_time(self) -> float:
        return 0.0

    @task
    def hold_one(self) -> None:
        env = self.environment
        size = option(env, "socket_batch_size")
        started = time.perf_counter()
        try:
            token = self.account.use(self.client)
            batch_id = upload(self.client, _prompts(size), f"socket-{size}.csv", variant=f"{size} prompts")["batch_id"]
            seen = watch(
                env,
                self.host,
                token,
                batch_id,
                hold_s=option(env, "socket_hold"),
                max_silence_s=option(env, "max_silence"),
                timeout_s=option(env, "batch_timeout"),
            )
            status = (seen.last or {}).get("status")
            if status != "completed" or seen.terminal_at is None:
                raise BatchFailed(f"batch {batch_id} ended {status}")
        except SocketRefused as exc:
            record(env, WS, WS_CONNECT, (time.perf_counter() - started) * 1000, exception=exc)
            gevent.sleep(RETRY_AFTER_S)
            return
        except (RequestException, SocketBroken, BatchFailed) as exc:
            record(env, BATCH, complete_name(size), (time.perf_counter() - started) * 1000, exception=exc)
            gevent.sleep(RETRY_AFTER_S)
            return
        record(env, BATCH, complete_name(size), (seen.terminal_at - started) * 1000, length=size)
