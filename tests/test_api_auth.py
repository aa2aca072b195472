"""Auth against a real server: register, login (token and cookie), expiry, closed registration."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import httpx
import jwt
import pytest

from utilities.client.api import ApiFailure, BatchApi, Credentials
from utilities.client.schemas import assert_matches_schema
from utilities.procs.backend import BackendProcess

BATCH_ENDPOINTS = [
    ("GET", "/api/v1/batch"),
    ("GET", "/api/v1/batch/status/0123456789abcdef0123456789abcdef"),
    ("GET", "/api/v1/batch/download/0123456789abcdef0123456789abcdef?format=csv"),
    ("POST", "/api/v1/batch/0123456789abcdef0123456789abcdef/pause"),
    ("POST", "/api/v1/batch/0123456789abcdef0123456789abcdef/resume"),
    ("POST", "/api/v1/batch/0123456789abcdef0123456789abcdef/cancel"),
    ("POST", "/api/v1/batch/0123456789abcdef0123456789abcdef/retry"),
    ("POST", "/api/v1/batch/upload"),
    ("GET", "/api/v1/auth/me"),
]


def test_register_then_login_returns_token_and_httponly_cookie(backend: BackendProcess) -> None:
    creds = Credentials.fresh()
    with httpx.Client(base_url=backend.url) as http:
        registered = http.post("/api/v1/auth/register", json=creds.__dict__)
        assert registered.status_code == 201, registered.text
        assert_matches_schema("user", registered.json())
        login = http.post("/api/v1/auth/login", json=creds.__dict__)
    assert login.status_code == 200, login.text
    assert_matches_schema("login", login.json())
    cookie = login.headers["set-cookie"].lower()
    assert "batchqa_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_session_cookie_alone_authenticates(backend: BackendProcess) -> None:
    creds = Credentials.fresh()
    with httpx.Client(base_url=backend.url) as http:
        http.post("/api/v1/auth/register", json=creds.__dict__).raise_for_status()
        http.post("/api/v1/auth/login", json=creds.__dict__).raise_for_status()
        me = http.get("/api/v1/auth/me")
        assert me.status_code == 200, me.text
        assert me.json()["email"] == creds.email
        assert http.post("/api/v1/auth/logout").status_code == 204
        assert http.get("/api/v1/auth/me").status_code == 401


@pytest.mark.parametrize(
    ("method", "path"), BATCH_ENDPOINTS, ids=[f"{m} {p.split('?')[0]}" for m, p in BATCH_ENDPOINTS]
)
def test_batch_endpoints_without_credentials_answer_401(backend: BackendProcess, method: str, path: str) -> None:
    response = httpx.request(method, backend.url + path)
    assert response.status_code == 401, response.text
    assert_matches_schema("error", response.json())
    assert response.json()["error"]["code"] == "unauthorized"


def test_duplicate_email_is_409_and_wrong_password_is_401(make_api: Callable[..., BatchApi]) -> None:
    creds = Credentials.fresh()
    api = make_api(register=False)
    api.register(creds)
    with pytest.raises(ApiFailure) as taken:
        api.register(creds)
    assert (taken.value.status_code, taken.value.code) == (409, "email_taken")
    with pytest.raises(ApiFailure) as wrong:
        api.login(Credentials(creds.email, "not-the-password"))
    assert (wrong.value.status_code, wrong.value.code) == (401, "invalid_credentials")


def test_short_password_is_rejected_with_the_field_named(backend: BackendProcess) -> None:
    response = httpx.post(f"{backend.url}/api/v1/auth/register", json={"email": "a@b.test", "password": "short"})
    assert response.status_code == 422
    assert_matches_schema("error", response.json())
    assert "password" in response.json()["error"]["message"]


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


def test_registration_can_be_closed(
    start_backend: Callable[..., BackendProcess], make_api: Callable[..., BatchApi]
) -> None:
    server = start_backend(env={"BATCHQA_REGISTRATION_OPEN": "false"})
    with pytest.raises(ApiFailure) as closed:
        make_api(server.url, register=False).register(Credentials.fresh())
    assert (closed.value.status_code, closed.value.code) == (403, "registration_closed")
