"""MixedUser: the rest of a user's day — small uploads, paste, list, status, JSON and ZIP downloads."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from locust import HttpUser, constant, task
from requests import RequestException

from perf.users.common import (
    STATUS_NAME,
    BatchFailed,
    download_and_validate,
    log_in,
    read_file,
    record,
    upload,
)
from perf.users.progress import SocketBroken, follow
from utilities.check.input_reader import InputTable
from utilities.paths import SAMPLE_FILES_DIR
from utilities.perf.names import BATCH, complete_name

SMALL_FILE = SAMPLE_FILES_DIR / "valid-100.csv"
PASTED_FILE = SAMPLE_FILES_DIR / "valid-10.txt"


class MixedUser(HttpUser):
    """A round of small uploads, status reads, lists and JSON/ZIP downloads of the user's latest
    finished batch, each download checked like BatchUser's CSV."""

    wait_time = constant(1.0)

    def on_start(self) -> None:
        self.token: str | None = None
        self.latest: tuple[str, InputTable] | None = None
        self.step = 0

    def _logged_in(self) -> str:
        if self.token is None:
            self.token = log_in(self.client, "load-mixed")
        return self.token

    def _run_batch(self, table: InputTable, send: Callable[[], dict[str, Any]]) -> None:
        env = self.environment
        started = time.perf_counter()
        try:
            token = self._logged_in()
            batch_id = send()["batch_id"]
            final, seen_at = follow(env, self.client, self.host, token, batch_id)
            if final.get("status") != "completed":
                raise BatchFailed(f"batch {batch_id} ended {final.get('status')}")
        except (RequestException, BatchFailed, SocketBroken) as exc:
            record(env, BATCH, complete_name(len(table)), (time.perf_counter() - started) * 1000, exception=exc)
            return
        record(env, BATCH, complete_name(len(table)), (seen_at - started) * 1000, length=len(table))
        self.latest = (batch_id, table)

    def upload_small_file(self) -> None:
        content, table = read_file(str(SMALL_FILE))
        self._run_batch(table, lambda: upload(self.client, content, SMALL_FILE.name))

    def paste_prompts(self) -> None:
        content, table = read_file(str(PASTED_FILE))

        def send() -> dict[str, Any]:
            response = self.client.post("/api/v1/batch/upload", data={"text": content.decode("utf-8")})
            response.raise_for_status()
            return response.json()

        self._run_batch(table, send)

    def list_batches(self) -> None:
        if self.token:
            self.client.get("/api/v1/batch")

    def check_status(self) -> None:
        if self.latest:
            batch_id, _ = self.latest
            self.client.get(f"/api/v1/batch/status/{batch_id}", name=STATUS_NAME)

    def _download(self, fmt: str) -> None:
        if self.latest:
            batch_id, table = self.latest
            download_and_validate(self.environment, self.client, batch_id, table, fmt)

    def download_json(self) -> None:
        self._download("json")

    def download_zip(self) -> None:
        self._download("zip")

    # A fixed round rather than weighted random tasks: a 20 s smoke then makes the same calls every run,
    # so no endpoint goes unmeasured by chance and run-to-run differences are the server's, not the dice's.
    ROUND = (
        upload_small_file,
        check_status,
        list_batches,
        download_json,
        paste_prompts,
        check_status,
        list_batches,
        download_zip,
    )

    @task
    def next_step(self) -> None:
        step = self.ROUND[self.step % len(self.ROUND)]
        self.step += 1
        step(self)
