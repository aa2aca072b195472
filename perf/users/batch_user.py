"""BatchUser: log in, upload a 1000-prompt file, follow it to the end, download the CSV and check it."""

from __future__ import annotations

import time
from pathlib import Path

from locust import HttpUser, task
from requests import RequestException

from perf.users.common import BatchFailed, download_and_validate, log_in, option, read_file, record, upload
from perf.users.progress import SocketBroken, follow
from utilities.paths import kit_file
from utilities.perf.names import BATCH, complete_name


class BatchUser(HttpUser):
    """The story's main path, one batch after another, ``--batch-wait`` seconds apart.

    Its own account; progress over the socket or by polling (``--progress``); the batch's time is
    upload start until the terminal status is seen (``complete N``); then the CSV is downloaded and
    checked row by row against the uploaded file (``validate csv``).
    """

    def on_start(self) -> None:
        self.token: str | None = None

    def wait_time(self) -> float:
        return option(self.environment, "batch_wait")

    @task
    def one_batch(self) -> None:
        env = self.environment
        path = str(kit_file(option(env, "batch_file")))
        content, table = read_file(path)
        size = len(table)
        started = time.perf_counter()
        try:
            if self.token is None:
                self.token = log_in(self.client, "load-batch")
            batch_id = upload(self.client, content, Path(path).name, variant=f"{size} prompts")["batch_id"]
            final, seen_at = follow(env, self.client, self.host, self.token, batch_id)
            if final.get("status") != "completed":
                raise BatchFailed(f"batch {batch_id} ended {final.get('status')}")
        except (RequestException, BatchFailed, SocketBroken) as exc:
            record(env, BATCH, complete_name(size), (time.perf_counter() - started) * 1000, exception=exc)
            return
        record(env, BATCH, complete_name(size), (seen_at - started) * 1000, length=size)
        download_and_validate(env, self.client, batch_id, table, "csv")
