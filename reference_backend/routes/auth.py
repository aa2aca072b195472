"""Register, log in (bearer token plus an HttpOnly session cookie), log out, who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import faults
from ..app_state import CurrentUserId, State, token_from
from ..errors import Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized
from ..models import User
from ..openapi import errors
from ..security import SESSION_COOKIE, hash_password, verify_password

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"),
]


class Credentials(BaseModel):
    email: Email
    password: str = Field(min_length=8, max_length=256)


class LoginBody(BaseModel):
    email: Email
    password: str = Field(min_length=1, max_length=256)


def _user_view(user: User) -> dict[str, object]:
    return {"id": user.id, "email": user.email}


@router.post("/register", status_code=201, responses=errors(400, 403, 409, 422))
def register(body: Credentials, state: State) -> dict[str, object]:
    if not state.settings.registration_open:
        raise Forbidden("Registration is closed on this server.", code="registration_closed")
    user = User(email=body.email, password_hash=hash_password(body.password))
    try:
        with state.store.write() as session:
            session.add(user)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{body.email} is already registered.", code="email_taken", email=body.email) from exc
    return _user_view(user)


@router.post("/login", responses=errors(400, 401, 422, 429))
def login(body: LoginBody, request: Request, response: Response, state: State) -> dict[str, object]:
    throttle = None if faults.on("no_login_throttle") else state.login_throttle
    address = request.client.host if request.client else "unknown"
    if throttle is not None and (wait := throttle.wait_seconds(body.email, address)):
        raise TooManyRequests(
            f"Too many failed logins; try again in {wait} s.", retry_after=wait, code="too_many_attempts"
        )
    with state.store.read() as session:
        user = session.scalars(select(User).where(User.email == body.email)).first()
    if user is None or not verify_password(user.password_hash, body.password):
        if throttle is not None:
            throttle.failed(body.email, address)
        raise Unauthorized("The email or the password is wrong.", code="invalid_credentials")
    if throttle is not None:
        throttle.succeeded(body.email, address)
    token = state.signer.issue(user.id)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=state.settings.token_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=state.settings.cookie_secure,
        path="/",
    )
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": state.settings.token_ttl_seconds,
        "user": _user_view(user),
    }


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response, state: State) -> None:
    """Ends the session on the server too: the token (bearer or cookie) is refused from now on."""
    response.delete_cookie(SESSION_COOKIE, path="/")
    try:
        token = token_from(request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE))
        claims = state.signer.claims(token) if token else None
    except Unauthorized:
        return  # nothing valid to end; logging out is idempotent
    if claims is not None:
        state.revocations.revoke(claims)


@router.get("/me", responses=errors(401, 404))
def me(user_id: CurrentUserId, state: State) -> dict[str, object]:
    with state.store.read() as session:
        user = session.get(User, user_id)
    if user is None:
        raise NotFound("The user of this token no longer exists.", code="user_not_found")
    return _user_view(user)
