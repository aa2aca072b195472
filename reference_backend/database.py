"""The database: engine set-up (SQLite WAL or PostgreSQL), schema creation and read/write sessions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from .models import Base

# Any fixed number: the key of the PostgreSQL advisory lock that serialises schema creation.
SCHEMA_LOCK_KEY = 0x62617463


class Store:
    """Owns the engine; ``write()`` is the only way to change state.

    SQLite allows one writer at a time. Writes take ``BEGIN IMMEDIATE`` so a transaction that reads
    and then writes never fails half-way with SQLITE_BUSY, and an in-process lock keeps this
    process's threads from contending for the file lock at all.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = self._create_engine(url)
        self._write_engine = self.engine.execution_options(batchqa_immediate=True)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        self._write_lock = threading.Lock() if self.is_sqlite else None

    def _create_engine(self, url: str) -> Engine:
        if not self.is_sqlite:
            return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            # Take over transaction control from pysqlite so BEGIN is ours to choose.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
            immediate = conn.get_execution_options().get("batchqa_immediate", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def create_schema(self) -> None:
        """Create missing tables and add missing columns; safe when several processes start at once.

        API and worker processes may start together on a fresh database, so creation runs under
        SQLite's write lock (``BEGIN IMMEDIATE``) or a PostgreSQL advisory lock instead of racing.
        """
        with self._schema_lock(), self._write_engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            Base.metadata.create_all(conn)
            _add_missing_columns(conn)

    def _schema_lock(self) -> threading.Lock | nullcontext[None]:
        return self._write_lock if self._write_lock is not None else nullcontext()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any exception."""
        if self._write_lock is None:
            with self._write() as session, session.begin():
                yield session
            return
        with self._write_lock, self._write() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _add_missing_columns(conn: Connection) -> None:
    """Columns added to a table after a database was created (``create_all`` only adds whole tables)."""
    inspector = inspect(conn)
    quote = conn.dialect.identifier_preparer.quote
    for table in Base.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            default = column.server_default.arg if column.server_default is not None else None  # type: ignore[attr-defined]
            if not isinstance(default, str | None) or (default is None and not column.nullable):
                raise RuntimeError(f"cannot add {table.name}.{column.name} to an existing database: no default")
            ddl = f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {column.type.compile(conn.dialect)}"
            if default is not None:
                ddl += f" DEFAULT {default} NOT NULL"
            conn.exec_driver_sql(ddl)
