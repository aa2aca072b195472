"""Security as OWASP's cheat sheets state it for a web app with cookie sessions: secure headers on every response,
login throttling, logout that revokes the token, and tokens never written to the server's log."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx

from utilities.check.contract_checks import assert_error
from utilities.client.api import BatchApi, Credentials
from utilities.client.socket_probe import probe_socket
from utilities.procs.backend import BackendProcess
from utilities.pytest_plugin import CLIENT_TIMEOUT_S, Target, http

PAGES = ["/login", "/batches", "/batches/new", "/settings/notifications"]
API_CALLS = [
    ("GET", "/api/v1/batch"),
    ("GET", "/api/v1/auth/me"),
    ("GET", "/api/v1/batch/status/" + "0" * 32),
    ("POST", "/api/v1/batch/upload"),
]
WRONG_PASSWORDS = 12
# A lockout longer than this lets an attacker keep a user out (OWASP: throttle, do not lock out for good).
LONGEST_FAIR_LOCKOUT_S = 15 * 60
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", re.IGNORECASE)


def header_problems(response: httpx.Response) -> list[str]:
    """The OWASP secure-header promises one response breaks."""
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    headers = response.headers
    problems = []
    csp = headers.get("content-security-policy", "")
    directives = {part.strip().split(" ", 1)[0].lower(): part.strip() for part in csp.split(";") if part.strip()}
    script = directives.get("script-src") or directives.get("default-src")
    if not csp:
        problems.append(f"{where}: no Content-Security-Policy")
    elif script is None:
        problems.append(f"{where}: the CSP restricts no script source (neither script-src nor default-src): {csp}")
    elif "'unsafe-inline'" in script or "'unsafe-eval'" in script or re.search(r"(^|\s)\*(\s|$)", script):
        problems.append(f"{where}: the CSP allows inline or any script: {script}")
    if headers.get("x-content-type-options", "").lower() != "nosniff":
        problems.append(f"{where}: X-Content-Type-Options is {headers.get('x-content-type-options')!r}, not nosniff")
    frame = headers.get("x-frame-options", "").upper()
    if "frame-ancestors" not in directives and frame not in ("DENY", "SAMEORIGIN"):
        problems.append(f"{where}: framing is not restricted (no CSP frame-ancestors, X-Frame-Options {frame!r})")
    referrer = headers.get("referrer-policy", "").lower()
    if not referrer or referrer in ("unsafe-url", "no-referrer-when-downgrade"):
        problems.append(f"{where}: Referrer-Policy is {referrer!r}")
    return problems


def test_every_html_page_sends_the_secure_headers_and_no_inline_script(api: BatchApi, target: Target) -> None:
    target.require("security_headers")
    problems = []
    with httpx.Client(
        base_url=api.base_url, timeout=CLIENT_TIMEOUT_S, cookies={"batchqa_session": api.token or ""}
    ) as client:
        for path in PAGES:
            response = client.get(path)
            assert response.status_code == 200, f"{path} answered {response.status_code}"
            problems += header_problems(response)
            if INLINE_SCRIPT.search(response.text):
                problems.append(f"GET {path}: the page carries an inline <script>, which a strict CSP blocks")
    assert not problems, "secure headers promise broken:\n  " + "\n  ".join(problems)


def test_every_api_response_sends_the_secure_headers_errors_included(api: BatchApi, target: Target) -> None:
    target.require("security_headers")
    problems = []
    for method, path in API_CALLS:
        problems += header_problems(api.http.request(method, path))
        problems += header_problems(http(method, api.base_url + path))  # the 401 answer too
    assert not problems, "secure headers promise broken:\n  " + "\n  ".join(problems)


def _throttled_target(target: Target, start_backend: Callable[..., BackendProcess]) -> str:
    """Throttling counts failures per client address too: on the bundled target a backend of its own, so the
    lockout this test provokes cannot refuse the logins of the tests beside it."""
    if target.bundled:
        return str(start_backend().url)
    target.require("login_throttling")
    return target.base_url


def test_repeated_wrong_passwords_are_throttled_with_429_and_retry_after(
    target: Target, start_backend: Callable[..., BackendProcess]
) -> None:
    url = _throttled_target(target, start_backend)
    creds = Credentials.fresh("throttle")
    answers = []
    with httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S) as client:
        client.post("/api/v1/auth/register", json=creds.__dict__).raise_for_status()
        for _ in range(WRONG_PASSWORDS):
            answers.append(client.post("/api/v1/auth/login", json={"email": creds.email, "password": "wrong-" * 3}))
        correct = client.post("/api/v1/auth/login", json=creds.__dict__)
    statuses = [a.status_code for a in answers]
    assert 429 in statuses, (
        f"login throttling promise broken: {WRONG_PASSWORDS} wrong passwords in a row were answered {statuses}"
    )
    first = statuses.index(429)
    assert set(statuses[:first]) == {401} and set(statuses[first:]) == {429}, statuses
    retry_after = answers[first].headers.get("retry-after", "")
    assert retry_after.isdigit() and 0 < int(retry_after) <= LONGEST_FAIR_LOCKOUT_S, (
        f"login throttling promise broken: a 429 must say when to come back (Retry-After), got {retry_after!r}"
    )
    assert_error(answers[first], 429, "too_many_attempts", promise="login throttling promise broken")
    assert correct.status_code == 429, (
        f"login throttling promise broken: during the lockout the right password got {correct.status_code}"
    )


def test_logout_revokes_the_bearer_token_on_the_server(api: BatchApi, target: Target) -> None:
    target.require("token_revocation")
    copied = api.token
    batch = api.upload(text="a prompt about tides")["batch_id"]
    response = api.http.post("/api/v1/auth/logout")
    assert response.status_code == 204, response.text
    bearer = {"Authorization": f"Bearer {copied}"}
    for path in ("/api/v1/auth/me", "/api/v1/batch", f"/api/v1/batch/status/{batch}"):
        assert_error(
            http("GET", api.base_url + path, headers=bearer),
            401,
            "token_revoked",
            promise=f"logout promise broken: a copied bearer token still opens {path} after logout",
        )
    if target.profile.has("progress_socket"):
        socket = probe_socket(api.base_url, batch, headers=bearer, until_messages=1, timeout=10)
        assert socket.close_code == 4401, (
            f"logout promise broken: the progress socket took a logged-out token ({socket.close_code})"
        )


def test_tokens_are_never_written_to_the_server_log(
    target: Target, start_backend: Callable[..., BackendProcess]
) -> None:
    if target.bundled:
        # A backend of its own at the default level (INFO): the log holds this test's requests alone.
        server = start_backend({"BATCHQA_LOG_LEVEL": "INFO"})
        url, log = str(server.url), server.log_path
    else:
        target.require("server_log")
        url, log = target.base_url, target.server_log
    assert log is not None
    creds = Credentials.fresh("logged")
    with BatchApi(url, timeout=CLIENT_TIMEOUT_S) as api:
        api.register(creds)
        api.login(creds)
        token = api.token or ""
        batch = api.upload(text="a prompt about tides\nanother about kelp")["batch_id"]
        api.status(batch)
        api.http.get("/api/v1/batch/status/" + "0" * 32)
        probe_socket(url, batch, query_token=token, until_messages=1, timeout=10)
        probe_socket(url, batch, headers={"Cookie": f"batchqa_session={token}"}, until_messages=1, timeout=10)
        http("GET", f"{url}/batches/{batch}", cookies={"batchqa_session": token})
        api.http.post("/api/v1/auth/logout")
    deadline = time.monotonic() + 2
    text = ""
    while time.monotonic() < deadline and batch not in text:  # the log is written by another process
        text = log.read_text(encoding="utf-8", errors="replace")
        time.sleep(0.1)
    signature = token.rsplit(".", 1)[-1]
    found = [name for name, secret in (("token", token), ("token signature", signature)) if secret and secret in text]
    assert not found, f"token promise broken: the server log holds the {found[0]} ({log})"
    assert creds.password not in text, "the server log holds a password"
