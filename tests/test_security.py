"""The backend's security promises, checked over HTTP only: headers, login throttling, logout, token-free logs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from utilities.client.api import BatchApi, Credentials
from utilities.client.socket_probe import probe_socket
from utilities.procs.backend import BackendProcess

pytestmark = pytest.mark.area("Security")

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {words[0].lower(): words[1:] for words in parts}


def security_header_problems(response: httpx.Response) -> list[str]:
    """What the OWASP HTTP Headers Cheat Sheet asks of this response and it lacks; empty when it complies."""
    headers = response.headers
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    problems = []
    policy = _directives(headers.get("content-security-policy", ""))
    scripts = policy.get("script-src", policy.get("default-src"))
    if scripts is None:
        problems.append(f"{where}: no Content-Security-Policy restricting scripts")
    elif {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & set(scripts):
        problems.append(f"{where}: the Content-Security-Policy allows inline or foreign script: {scripts}")
    if policy.get("frame-ancestors") != ["'none'"] and headers.get("x-frame-options", "").upper() != "DENY":
        problems.append(f"{where}: framing is not forbidden (frame-ancestors 'none' or X-Frame-Options: DENY)")
    if headers.get("x-content-type-options", "").lower() != "nosniff":
        problems.append(f"{where}: no X-Content-Type-Options: nosniff")
    if not headers.get("referrer-policy"):
        problems.append(f"{where}: no Referrer-Policy")
    return problems


def _responses(url: str, api: BatchApi) -> Iterator[httpx.Response]:
    batch = api.upload(text="secure me please")["batch_id"]
    with httpx.Client(base_url=url, timeout=30) as anonymous:
        for path in ("/login", "/batches/new", "/batches", f"/batches/{batch}", "/settings/notifications", "/"):
            yield anonymous.get(path)
        for path in ("/static/app.css", "/static/js/batch.js", "/healthz", "/openapi.json", "/metrics"):
            yield anonymous.get(path)
        yield anonymous.get("/api/v1/batch")  # 401
        yield anonymous.post(LOGIN, json={"email": "nobody@example.test", "password": "wrong-password"})  # 401
        yield anonymous.get("/api/v1/no-such-route")  # 404
    yield api.http.get("/api/v1/batch")
    yield api.http.get(f"/api/v1/batch/status/{batch}")
    yield api.http.get(f"/api/v1/batch/download/{batch}", params={"format": "json"})
    yield api.http.get(f"/api/v1/batch/download/{batch}", params={"format": "xml"})  # 422
    yield api.http.post(f"/api/v1/batch/{batch}/retry")  # 409 or 200


def test_every_page_static_file_and_api_answer_carries_the_security_headers(
    backend: BackendProcess, api: BatchApi
) -> None:
    problems = [p for response in _responses(backend.url, api) for p in security_header_problems(response)]
    assert not problems, "\n".join(problems)


def test_api_answers_are_not_cached(backend: BackendProcess, api: BatchApi) -> None:
    for response in (api.http.get("/api/v1/batch"), httpx.get(f"{backend.url}/api/v1/batch")):
        assert "no-store" in response.headers.get("cache-control", ""), response.request.url


_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I)
_INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
_INLINE_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


@pytest.mark.parametrize("path", ["/login", "/batches/new", "/batches", "/batches/abc", "/settings/notifications"])
def test_pages_hold_no_inline_script_the_policy_would_block(backend: BackendProcess, path: str) -> None:
    page = httpx.get(f"{backend.url}{path}").text
    for pattern in (_INLINE_SCRIPT, _INLINE_HANDLER, _INLINE_URL):
        assert not pattern.search(page), f"{path}: {pattern.search(page)}"


def test_the_fault_switch_can_drop_the_headers_and_the_check_sees_it(
    start_backend: Callable[..., BackendProcess],
) -> None:
    server = start_backend(env={"BATCHQA_FAULTS": "no_security_headers"})
    assert security_header_problems(httpx.get(f"{server.url}/login"))


# Login throttling: small thresholds and lockouts of seconds, so the tests wait seconds, not minutes. Every
# lockout is checked by the request right after the failure that set it: a slow registration in between
# (Argon2 on a busy machine) could outlast it.
THROTTLE_ENV = {
    "BATCHQA_LOGIN_MAX_FAILURES": "3",
    "BATCHQA_LOGIN_MAX_FAILURES_PER_ADDRESS": "6",
    "BATCHQA_LOGIN_MAX_FAILURES_PER_ACCOUNT": "8",
    "BATCHQA_LOGIN_LOCKOUT_SECONDS": "2",
    "BATCHQA_LOGIN_LOCKOUT_MAX_SECONDS": "4",
}


@pytest.fixture
def throttled(start_backend: Callable[..., BackendProcess]) -> BackendProcess:
    return start_backend(env=THROTTLE_ENV)


class Client:
    """Logins from one client address (the backend trusts X-Forwarded-For from loopback, as behind a proxy)."""

    def __init__(self, url: str, address: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30, headers={"X-Forwarded-For": address})

    def login(self, creds: Credentials, password: str | None = None) -> httpx.Response:
        return self.http.post(LOGIN, json={"email": creds.email, "password": password or creds.password})

    def fail(self, creds: Credentials) -> httpx.Response:
        return self.login(creds, "a-wrong-password")

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def client_at(throttled: BackendProcess) -> Iterator[Callable[[str], Client]]:
    clients: list[Client] = []

    def make(address: str) -> Client:
        clients.append(Client(throttled.url, address))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def account(throttled: BackendProcess) -> Callable[[], Credentials]:
    def make() -> Credentials:
        creds = Credentials.fresh("throttle")
        with BatchApi(throttled.url) as api:
            api.register(creds)
        return creds

    return make


def _assert_throttled(response: httpx.Response) -> int:
    assert response.status_code == 429, f"expected 429, got {response.status_code}: {response.text}"
    assert response.json()["error"]["code"] == "too_many_attempts"
    retry_after = response.headers.get("retry-after", "")
    assert retry_after.isdigit() and int(retry_after) >= 1, f"Retry-After must be whole seconds: {retry_after!r}"
    return int(retry_after)


def _until_not_throttled(attempt: Callable[[], httpx.Response], timeout: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while (response := attempt()).status_code == 429:
        assert time.monotonic() < deadline, f"still locked after {timeout} s"
        time.sleep(0.1)
    return response


def test_failed_logins_lock_the_account_briefly_even_for_the_right_password(
    client_at: Callable[[str], Client], account: Callable[[], Credentials]
) -> None:
    creds, client = account(), client_at("203.0.113.10")
    assert [client.fail(creds).status_code for _ in range(3)] == [401, 401, 401]
    _assert_throttled(client.login(creds))
    assert _until_not_throttled(lambda: client.login(creds)).status_code == 200


def test_a_successful_login_resets_the_count(
    client_at: Callable[[str], Client], account: Callable[[], Credentials]
) -> None:
    creds, client = account(), client_at("203.0.113.11")
    for _ in range(2):
        assert [client.fail(creds).status_code, client.fail(creds).status_code] == [401, 401]
        assert client.login(creds).status_code == 200


def test_each_further_lockout_is_longer_up_to_the_bound(
    client_at: Callable[[str], Client], account: Callable[[], Credentials]
) -> None:
    creds, client = account(), client_at("203.0.113.12")
    for _ in range(3):
        client.fail(creds)
    waits = [_assert_throttled(client.fail(creds))]
    for _ in range(2):
        # The first failure after a lockout locks again at once, for twice as long, never over the maximum.
        assert _until_not_throttled(lambda: client.fail(creds)).status_code == 401
        waits.append(_assert_throttled(client.fail(creds)))
    assert waits == [2, 4, 4]


def test_an_attacker_elsewhere_does_not_lock_the_user_out(
    client_at: Callable[[str], Client], account: Callable[[], Credentials]
) -> None:
    creds = account()
    attacker, user = client_at("198.51.100.66"), client_at("192.0.2.20")
    for _ in range(3):
        attacker.fail(creds)
    _assert_throttled(attacker.login(creds))
    assert user.login(creds).status_code == 200


def test_one_address_failing_on_many_accounts_is_throttled(
    client_at: Callable[[str], Client], account: Callable[[], Credentials]
) -> None:
    sprayer, bystander = client_at("198.51.100.77"), client_at("192.0.2.21")
    victims = [account() for _ in range(3)]
    fresh = account()
    for victim in victims:
        assert [sprayer.fail(victim).status_code, sprayer.fail(victim).status_code] == [401, 401]
    _assert_throttled(sprayer.login(fresh))
    assert bystander.login(fresh).status_code == 200


def test_one_account_failing_from_many_addresses_is_throttled_for_a_while(
    client_at: Callable[[str], Client], account: Callable[[], Credentials]
) -> None:
    creds = account()
    for index in range(4):
        client = client_at(f"198.51.100.{100 + index}")
        assert [client.fail(creds).status_code, client.fail(creds).status_code] == [401, 401]
    user = client_at("192.0.2.22")
    _assert_throttled(user.login(creds))
    assert _until_not_throttled(lambda: user.login(creds)).status_code == 200


def test_without_throttling_the_check_sees_twelve_failures_pass(start_backend: Callable[..., BackendProcess]) -> None:
    server = start_backend(env={**THROTTLE_ENV, "BATCHQA_FAULTS": "no_login_throttle"})
    creds = Credentials.fresh("unthrottled")
    with BatchApi(server.url) as api:
        api.register(creds)
    client = Client(server.url, "203.0.113.99")
    try:
        assert {client.fail(creds).status_code for _ in range(12)} == {401}
        assert client.login(creds).status_code == 200
    finally:
        client.close()


# Logout
def test_logout_revokes_the_bearer_token_on_the_server(backend: BackendProcess, api: BatchApi) -> None:
    copied = api.token
    other = BatchApi(backend.url)
    other.use_token(copied or "")
    assert other.http.get(ME).status_code == 200
    assert api.http.post("/api/v1/auth/logout").status_code == 204
    response = other.http.get(ME)
    other.close()
    assert (response.status_code, response.json()["error"]["code"]) == (401, "token_revoked")


def test_logout_revokes_the_session_cookie_too(backend: BackendProcess) -> None:
    creds = Credentials.fresh("cookie")
    with httpx.Client(base_url=backend.url, timeout=30) as browser:
        assert browser.post("/api/v1/auth/register", json=creds.__dict__).status_code == 201
        assert browser.post(LOGIN, json=creds.__dict__).status_code == 200
        cookie = browser.cookies.get("batchqa_session")
        assert cookie and browser.get(ME).status_code == 200
        logout = browser.post("/api/v1/auth/logout")
        assert logout.status_code == 204 and "batchqa_session=" in logout.headers.get("set-cookie", "")
    replayed = httpx.get(f"{backend.url}{ME}", headers={"Cookie": f"batchqa_session={cookie}"})
    assert replayed.status_code == 401


def test_a_logged_out_token_cannot_open_a_socket_and_other_sessions_live_on(backend: BackendProcess) -> None:
    creds = Credentials.fresh("two-sessions")
    with BatchApi(backend.url) as first, BatchApi(backend.url) as second:
        first.register(creds)
        first.login(creds)
        second.login(creds)
        batch = first.upload(text="watch me")["batch_id"]
        assert first.http.post("/api/v1/auth/logout").status_code == 204
        refused = probe_socket(backend.url, batch, query_token=first.token, timeout=10)
        assert refused.close_code == 4401
        assert second.http.get(ME).status_code == 200, "logging one session out must not end the others"


def test_logout_is_idempotent_without_a_valid_token(backend: BackendProcess) -> None:
    assert httpx.post(f"{backend.url}/api/v1/auth/logout").status_code == 204
    garbage = httpx.post(f"{backend.url}/api/v1/auth/logout", headers={"Authorization": "Bearer garbage"})
    assert garbage.status_code == 204


def test_with_logout_keeps_token_the_check_sees_the_token_live_on(
    start_backend: Callable[..., BackendProcess],
) -> None:
    server = start_backend(env={"BATCHQA_FAULTS": "logout_keeps_token"})
    with BatchApi.new_user(server.url) as api:
        assert api.http.post("/api/v1/auth/logout").status_code == 204
        assert api.http.get(ME).status_code == 200


# Logs
def _socket_with_query_token(server: BackendProcess) -> str:
    with BatchApi.new_user(server.url) as api:
        batch = api.upload(text="log me")["batch_id"]
        outcome = probe_socket(server.url, batch, query_token=api.token, until_messages=1, timeout=10)
        assert outcome.first is not None and api.token
        forged = probe_socket(server.url, batch, query_token=api.token[:-4] + "AAAA", timeout=10)
        assert forged.close_code == 4401
        return api.token


def _server_log(server: BackendProcess) -> str:
    server.stop()  # flushes and closes the log
    return server.log_path.read_text(encoding="utf-8")


def test_tokens_in_socket_urls_never_reach_the_server_log(start_backend: Callable[..., BackendProcess]) -> None:
    server = start_backend(env={"BATCHQA_LOG_LEVEL": "DEBUG"})
    token = _socket_with_query_token(server)
    log = _server_log(server)
    assert "WebSocket /api/v1/batch/ws/" in log, "the handshake line must be logged for this test to mean anything"
    assert token not in log and token[-20:] not in log
    assert "token=[redacted]" in log


def test_handshake_headers_at_debug_keep_their_names_but_not_the_session(
    start_backend: Callable[..., BackendProcess],
) -> None:
    server = start_backend(env={"BATCHQA_LOG_LEVEL": "DEBUG"})
    with BatchApi.new_user(server.url) as api:
        batch = api.upload(text="log my headers")["batch_id"]
        headers = {"Authorization": f"Bearer {api.token}", "Cookie": f"session={api.token}"}
        outcome = probe_socket(server.url, batch, headers=headers, until_messages=1, timeout=10)
        token = api.token
    assert outcome.first is not None and token
    log = _server_log(server)
    assert "authorization: [redacted]" in log.lower(), "the handshake headers must be logged for this to mean anything"
    assert "cookie: [redacted]" in log.lower()
    assert token not in log and token[-20:] not in log


def test_with_log_tokens_the_check_finds_the_token_in_the_log(start_backend: Callable[..., BackendProcess]) -> None:
    server = start_backend(env={"BATCHQA_FAULTS": "log_tokens"})
    token = _socket_with_query_token(server)
    assert token in _server_log(server)


# Hostile requests: out-of-range ids and methods a path does not serve never reach the database or a handler.
@pytest.mark.parametrize("raw_id", ["0", "-1", "2147483648", "9223372036854775808", "18446744073709551616"])
def test_an_out_of_range_notification_id_is_422_not_a_server_error(api: BatchApi, raw_id: str) -> None:
    response = api.http.post(f"/api/v1/notifications/{raw_id}/read")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_error")


def test_a_method_the_path_does_not_serve_is_405_with_every_allowed_method(api: BatchApi) -> None:
    response = api.http.request("OPTIONS", "/api/v1/notifications/preferences")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "PUT"}
    batch = api.upload(text="a prompt to act on")["batch_id"]
    for path in (f"/api/v1/batch/download/{batch}", f"/api/v1/batch/status/{batch}"):
        response = api.http.post(path)
        assert response.status_code == 405 and "GET" in response.headers["allow"], path


def test_the_openapi_document_declares_every_error_status_a_route_answers(backend: BackendProcess) -> None:
    paths = httpx.get(f"{backend.url}/openapi.json").json()["paths"]
    expected = {
        ("post", "/api/v1/auth/login"): {"400", "401", "422", "429"},
        ("post", "/api/v1/batch/upload"): {"202", "400", "401", "413", "415", "422"},
        ("get", "/api/v1/batch/download/{batch_id}"): {"200", "401", "404", "422"},
        ("post", "/api/v1/batch/{batch_id}/retry"): {"200", "401", "404", "409"},
        ("post", "/api/v1/notifications/{notification_id}/read"): {"200", "401", "404", "422"},
    }
    for (method, path), statuses in expected.items():
        declared = set(paths[path][method]["responses"])
        assert statuses <= declared, f"{method.upper()} {path} declares {sorted(declared)}"
    assert "multipart/form-data" in paths["/api/v1/batch/upload"]["post"]["requestBody"]["content"]
