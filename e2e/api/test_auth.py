"""Auth through the contract: register, login (token and cookie), logout, me, bad and expired tokens, closed sign-up."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from utilities.check.contract_checks import assert_error
from utilities.client.api import BatchApi, Credentials
from utilities.client.schemas import assert_matches_schema
from utilities.procs.backend import BackendProcess
from utilities.pytest_plugin import CLIENT_TIMEOUT_S, Target, http

NO_BATCH = "0123456789abcdef0123456789abcdef"
BATCH_ENDPOINTS = [
    ("GET", "/api/v1/batch"),
    ("GET", f"/api/v1/batch/status/{NO_BATCH}"),
    ("GET", f"/api/v1/batch/download/{NO_BATCH}?format=csv"),
    ("POST", f"/api/v1/batch/{NO_BATCH}/pause"),
    ("POST", f"/api/v1/batch/{NO_BATCH}/resume"),
    ("POST", f"/api/v1/batch/{NO_BATCH}/cancel"),
    ("POST", f"/api/v1/batch/{NO_BATCH}/retry"),
    ("POST", "/api/v1/batch/upload"),
    ("GET", "/api/v1/auth/me"),
]
SESSION_COOKIE = "batchqa_session"


def test_register_then_login_returns_a_bearer_token_and_an_httponly_lax_cookie(base_url: str) -> None:
    creds = Credentials.fresh("auth")
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        registered = client.post("/api/v1/auth/register", json=creds.__dict__)
        assert registered.status_code == 201, f"register promise broken: {registered.status_code} {registered.text}"
        assert_matches_schema("user", registered.json())
        assert registered.json()["email"] == creds.email
        login = client.post("/api/v1/auth/login", json=creds.__dict__)
    assert login.status_code == 200, f"login promise broken: {login.status_code} {login.text}"
    body = login.json()
    assert_matches_schema("login", body)
    assert body["token_type"] == "bearer" and body["user"]["email"] == creds.email
    cookie = login.headers.get("set-cookie", "")
    assert f"{SESSION_COOKIE}={body['access_token']}" in cookie, f"login must set the session cookie: {cookie!r}"
    assert "httponly" in cookie.lower(), f"the session cookie must be HttpOnly: {cookie!r}"
    assert "samesite=lax" in cookie.lower(), f"the session cookie must be SameSite=Lax: {cookie!r}"


def test_me_answers_for_the_bearer_token_and_for_the_cookie_alone(base_url: str) -> None:
    creds = Credentials.fresh("auth")
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        client.post("/api/v1/auth/register", json=creds.__dict__).raise_for_status()
        token = client.post("/api/v1/auth/login", json=creds.__dict__).json()["access_token"]
        by_cookie = client.get("/api/v1/auth/me")
    by_bearer = http("GET", f"{base_url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    for how, response in (("cookie", by_cookie), ("bearer token", by_bearer)):
        assert response.status_code == 200, f"auth promise broken: /me refused the {how}: {response.text}"
        assert_matches_schema("user", response.json())
        assert response.json()["email"] == creds.email, f"/me by {how} answered for someone else"


def test_logout_clears_the_cookie_and_the_session_no_longer_works(base_url: str) -> None:
    creds = Credentials.fresh("auth")
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        client.post("/api/v1/auth/register", json=creds.__dict__).raise_for_status()
        client.post("/api/v1/auth/login", json=creds.__dict__).raise_for_status()
        logout = client.post("/api/v1/auth/logout")
        assert logout.status_code == 204, f"logout promise broken: {logout.status_code} {logout.text}"
        cleared = logout.headers.get("set-cookie", "")
        assert SESSION_COOKIE in cleared, f"logout must clear the session cookie: {cleared!r}"
        assert_error(client.get("/api/v1/auth/me"), 401, promise="a logged-out cookie session must be refused")


@pytest.mark.parametrize(
    ("method", "path"),
    BATCH_ENDPOINTS,
    ids=[f"{m} {p.split('?')[0].replace(NO_BATCH, '{id}')}" for m, p in BATCH_ENDPOINTS],
)
def test_every_batch_endpoint_without_credentials_answers_401(base_url: str, method: str, path: str) -> None:
    assert_error(http(method, base_url + path), 401, promise="every batch endpoint needs credentials")


@pytest.mark.parametrize(
    "token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."], ids=["garbage", "three-parts", "alg-none"]
)
def test_a_wrong_bearer_token_is_401(base_url: str, token: str) -> None:
    response = http("GET", f"{base_url}/api/v1/batch", headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 401, promise="a token the target did not issue must be refused")


def test_a_tampered_token_is_401(api: BatchApi) -> None:
    assert api.token
    head, payload, signature = api.token.split(".") if api.token.count(".") == 2 else (api.token, "", "")
    tampered = ".".join([head, payload, signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")])
    response = http("GET", f"{api.base_url}/api/v1/batch", headers={"Authorization": f"Bearer {tampered}"})
    assert_error(response, 401, promise="a token with a changed signature must be refused")


def test_duplicate_email_is_409_and_a_wrong_password_is_401(base_url: str) -> None:
    creds = Credentials.fresh("auth")
    with BatchApi(base_url, timeout=CLIENT_TIMEOUT_S) as api:
        api.register(creds)
        taken = api.http.post("/api/v1/auth/register", json=creds.__dict__)
        assert_error(taken, 409, "email_taken", promise="a taken email must be refused")
        wrong = api.http.post("/api/v1/auth/login", json={"email": creds.email, "password": "not-the-password"})
        assert_error(wrong, 401, "invalid_credentials", promise="a wrong password must be refused")
        unknown = api.http.post("/api/v1/auth/login", json={"email": "nobody-" + creds.email, "password": "x" * 12})
        assert_error(unknown, 401, "invalid_credentials", promise="an unknown email looks like a wrong password")


def test_an_expired_token_is_401_token_expired(target: Target, start_backend: Callable[..., BackendProcess]) -> None:
    if target.bundled:
        # A backend of its own whose tokens live one second: a real token of this target, expired for real.
        server = start_backend({"BATCHQA_TOKEN_TTL_SECONDS": "1"})
        assert server.url is not None
        url = server.url
        with BatchApi.new_user(url, "expiry") as api:
            token = api.token
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            response = http("GET", f"{url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
            if response.status_code != 200:
                break
            time.sleep(0.2)  # the poll interval while the token's second runs out
    else:
        target.require("expired_token")
        response = http(
            "GET",
            f"{target.base_url}/api/v1/auth/me",
            headers={"Authorization": f"Bearer {target.profile.expired_token}"},
        )
    assert_error(response, 401, "token_expired", promise="an expired token must be refused as expired")


def test_closed_registration_is_403_registration_closed(
    target: Target, start_backend: Callable[..., BackendProcess]
) -> None:
    if target.bundled:
        server = start_backend({"BATCHQA_REGISTRATION_OPEN": "false"})
        assert server.url is not None
        url = server.url
    else:
        target.require("registration_closed")
        url = str(target.profile.registration_closed_url)
    response = http("POST", f"{url}/api/v1/auth/register", json=Credentials.fresh("closed").__dict__)
    assert_error(response, 403, "registration_closed", promise="a closed deployment must refuse registration")
