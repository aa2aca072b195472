"""Everything one running app holds, and the dependency aliases routes use to reach it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from .bus import Bus
from .config import Settings
from .database import Store
from .errors import Unauthorized
from .login_throttle import LoginThrottle
from .metrics import Metrics
from .originals import Storage
from .revocation import Revocations
from .security import SESSION_COOKIE, TokenSigner
from .worker_pool import WorkerPool


@dataclass
class AppState:
    settings: Settings
    store: Store
    bus: Bus
    metrics: Metrics
    signer: TokenSigner
    pool: WorkerPool
    storage: Storage
    login_throttle: LoginThrottle
    revocations: Revocations


def get_state(request: Request) -> AppState:
    return request.app.state.batchqa


def token_from(authorization: str | None, cookie: str | None) -> str | None:
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.", code="invalid_token")
    return cookie or None


# Declared for the OpenAPI document (either one authenticates); the token itself is read below, so a
# malformed Authorization header gets its own 401 instead of being ignored.
_bearer = HTTPBearer(auto_error=False, description="The access_token from POST /api/v1/auth/login.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="The session cookie set by login.")


def current_user_id(
    request: Request,
    state: Annotated[AppState, Depends(get_state)],
    _bearer_token: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    _session_cookie: Annotated[str | None, Security(_cookie)],
) -> int:
    token = token_from(request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE))
    if token is None:
        raise Unauthorized("Log in first: send a bearer token or the session cookie.")
    return state.signer.user_id(token)


State = Annotated[AppState, Depends(get_state)]
CurrentUserId = Annotated[int, Depends(current_user_id)]
