"""Passwords (Argon2id) and signed, expiring, revocable bearer tokens (HS256 JWT with a ``jti``)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import Unauthorized

SESSION_COOKIE = "batchqa_session"
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    jti: str
    expires_at: float


class TokenSigner:
    """Issues and checks tokens; ``is_revoked(jti)`` says whether a logout ended a token before its expiry."""

    def __init__(self, key: str, ttl_seconds: int, *, is_revoked: Callable[[str], bool] | None = None) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds
        self._is_revoked = is_revoked or (lambda _jti: False)

    def issue(self, user_id: int) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "iat": now, "exp": now + self.ttl_seconds, "jti": secrets.token_urlsafe(16)}
        return jwt.encode(claims, self._key, algorithm="HS256")

    def claims(self, token: str) -> TokenClaims:
        """The claims of a genuine, unexpired token; ``Unauthorized`` when it is forged, malformed or expired."""
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], options={"require": ["exp", "sub"]})
            # A token without an id could not be revoked by logout, so it is not accepted at all.
            return TokenClaims(user_id=int(claims["sub"]), jti=str(claims["jti"]), expires_at=float(claims["exp"]))
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The session has expired; log in again.", code="token_expired") from exc
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            raise Unauthorized("The bearer token is not valid.", code="invalid_token") from exc

    def user_id(self, token: str) -> int:
        """The user a token speaks for; ``Unauthorized`` when it is forged, malformed, expired or logged out."""
        claims = self.claims(token)
        if self._is_revoked(claims.jti):
            raise Unauthorized("This session was logged out; log in again.", code="token_revoked")
        return claims.user_id
