"""Auth internals of the bundled backend: how passwords are stored and which tokens its key accepts.

The black-box auth checks (register, login, cookie, logout, refusals, closed registration) run against any
target in ``e2e/api/test_auth.py``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import httpx
import jwt
import pytest

from utilities.client.api import BatchApi, Credentials
from utilities.procs.backend import BackendProcess

pytestmark = pytest.mark.area("API")


def test_passwords_are_stored_as_argon2_hashes(backend: BackendProcess, make_api: Callable[..., BatchApi]) -> None:
    creds = Credentials.fresh()
    make_api(register=False).register(creds)
    with sqlite3.connect(backend.data_dir / "batchqa.sqlite3") as db:
        (stored,) = db.execute("SELECT password_hash FROM users WHERE email = ?", (creds.email,)).fetchone()
    assert stored.startswith("$argon2id$")
    assert creds.password not in stored


def test_forged_and_expired_tokens_are_refused(
    start_backend: Callable[..., BackendProcess], make_api: Callable[..., BatchApi]
) -> None:
    key = "test-signing-key-0123456789-0123456789"
    server = start_backend(env={"BATCHQA_SECRET_KEY": key})
    api = make_api(server.url)
    user_id = api.http.get("/api/v1/auth/me").json()["id"]
    now = int(time.time())
    expired = jwt.encode({"sub": str(user_id), "iat": now - 100, "exp": now - 10}, key, algorithm="HS256")
    forged = jwt.encode({"sub": str(user_id), "iat": now, "exp": now + 100}, "another-key-" * 4, algorithm="HS256")
    for token, code in ((expired, "token_expired"), (forged, "invalid_token"), ("garbage", "invalid_token")):
        response = httpx.get(f"{server.url}/api/v1/batch", headers={"Authorization": f"Bearer {token}"})
        assert (response.status_code, response.json()["error"]["code"]) == (401, code)
