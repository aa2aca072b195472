"""Logout's server side: a token's id goes into ``revoked_tokens`` and every later use of it is refused."""

from __future__ import annotations

import time

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from . import faults
from .database import Store
from .models import RevokedToken
from .security import TokenClaims


class Revocations:
    """The revocation list in the database, so every API process (and a restarted one) honours a logout."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def is_revoked(self, jti: str) -> bool:
        # Asked on every authenticated request: one indexed Core query on a pooled connection, no ORM session.
        with self.store.engine.connect() as connection:
            return connection.execute(select(RevokedToken.jti).where(RevokedToken.jti == jti)).first() is not None

    def revoke(self, claims: TokenClaims) -> None:
        """End the token for good; also drops entries whose tokens have expired anyway."""
        if faults.on("logout_keeps_token"):
            return
        insert = sqlite_insert if self.store.is_sqlite else pg_insert
        with self.store.write() as session:
            session.execute(delete(RevokedToken).where(RevokedToken.expires_at < time.time()))
            session.execute(
                insert(RevokedToken).values(jti=claims.jti, expires_at=claims.expires_at).on_conflict_do_nothing()
            )
