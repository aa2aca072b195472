"""Passwords (Argon2id) and signed, expiring bearer tokens (HS256 JWT)."""

from __future__ import annotations

import time

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


class TokenSigner:
    def __init__(self, key: str, ttl_seconds: int) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: int) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "iat": now, "exp": now + self.ttl_seconds}
        return jwt.encode(claims, self._key, algorithm="HS256")

    def user_id(self, token: str) -> int:
        """The user a token speaks for; ``Unauthorized`` when it is forged, malformed or expired."""
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The session has expired; log in again.", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The bearer token is not valid.", code="invalid_token") from exc
        return int(claims["sub"])
