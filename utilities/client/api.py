"""A small typed httpx client for the batch contract, for tests, load scenarios and the CLI."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TERMINAL_STATUSES = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})


class ApiFailure(Exception):
    """A response that was not the one asked for; carries the contract's error body when there is one."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status_code = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.code: str | None = error.get("code")
        self.details: dict[str, Any] = error.get("details", {})
        self.message: str = error.get("message", response.text[:500])
        super().__init__(
            f"{response.request.method} {response.request.url.path} -> {self.status_code} {self.code}: {self.message}"
        )


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str

    @classmethod
    def fresh(cls, prefix: str = "qa") -> Credentials:
        return cls(email=f"{prefix}-{uuid.uuid4().hex[:12]}@example.test", password=f"pw-{uuid.uuid4().hex}")


class BatchApi:
    """One user's session against a target. ``raw`` methods return the response; the rest check it."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self.token: str | None = None
        if token:
            self.use_token(token)

    def use_token(self, token: str) -> None:
        self.token = token
        self.http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> BatchApi:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @staticmethod
    def _ok(response: httpx.Response, *expected: int) -> httpx.Response:
        if response.status_code not in expected:
            raise ApiFailure(response)
        return response

    # auth
    def register(self, creds: Credentials) -> dict[str, Any]:
        return self._ok(self.http.post("/api/v1/auth/register", json=creds.__dict__), 201).json()

    def login(self, creds: Credentials) -> dict[str, Any]:
        body = self._ok(self.http.post("/api/v1/auth/login", json=creds.__dict__), 200).json()
        self.use_token(body["access_token"])
        self.http.cookies.clear()  # the bearer token is what this client speaks with
        return body

    @classmethod
    def new_user(cls, base_url: str, prefix: str = "qa") -> BatchApi:
        """Register a fresh user and log in: every test gets its own, so tests stay independent."""
        api = cls(base_url)
        creds = Credentials.fresh(prefix)
        try:
            api.register(creds)
            api.login(creds)
        except BaseException:
            api.close()
            raise
        return api

    # batches
    def upload_raw(
        self,
        path: Path | None = None,
        *,
        content: bytes | None = None,
        filename: str | None = None,
        text: str | None = None,
    ) -> httpx.Response:
        if text is not None:
            return self.http.post("/api/v1/batch/upload", data={"text": text})
        if path is not None:
            content = Path(path).read_bytes()
            filename = filename or Path(path).name
        if content is None or filename is None:
            raise ValueError("give a path, content and a filename, or text")
        return self.http.post("/api/v1/batch/upload", files={"file": (filename, content)})

    def upload(self, path: Path | None = None, **kwargs: Any) -> dict[str, Any]:
        return self._ok(self.upload_raw(path, **kwargs), 202).json()

    def status(self, batch_id: str) -> dict[str, Any]:
        return self._ok(self.http.get(f"/api/v1/batch/status/{batch_id}"), 200).json()

    def list_batches(self) -> list[dict[str, Any]]:
        return self._ok(self.http.get("/api/v1/batch"), 200).json()["batches"]

    def action_raw(self, batch_id: str, action: str) -> httpx.Response:
        return self.http.post(f"/api/v1/batch/{batch_id}/{action}")

    def action(self, batch_id: str, action: str) -> dict[str, Any]:
        return self._ok(self.action_raw(batch_id, action), 200).json()

    def pause(self, batch_id: str) -> dict[str, Any]:
        return self.action(batch_id, "pause")

    def resume(self, batch_id: str) -> dict[str, Any]:
        return self.action(batch_id, "resume")

    def cancel(self, batch_id: str) -> dict[str, Any]:
        return self.action(batch_id, "cancel")

    def retry(self, batch_id: str) -> dict[str, Any]:
        return self.action(batch_id, "retry")

    def download_raw(self, batch_id: str, fmt: str = "csv") -> httpx.Response:
        return self.http.get(f"/api/v1/batch/download/{batch_id}", params={"format": fmt})

    def download(self, batch_id: str, fmt: str = "csv") -> bytes:
        return self._ok(self.download_raw(batch_id, fmt), 200).content

    def wait_until(
        self,
        batch_id: str,
        statuses: set[str] | frozenset[str] = TERMINAL_STATUSES,
        *,
        timeout: float = 120.0,
        interval: float = 0.1,
    ) -> dict[str, Any]:
        """Poll the status endpoint until the batch reaches one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(batch_id)
            if status["status"] in statuses:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} still {status['status']} after {timeout:.0f} s: {status}")
            time.sleep(interval)

    def wait_for_progress(self, batch_id: str, processed: int, *, timeout: float = 60.0) -> dict[str, Any]:
        """Poll until at least ``processed`` rows are done (or the batch ended)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(batch_id)
            if status["processed"] >= processed or status["status"] in TERMINAL_STATUSES:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} at {status['processed']} < {processed} rows: {status}")
            time.sleep(0.05)
