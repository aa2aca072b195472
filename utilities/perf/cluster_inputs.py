"""What the cluster commands (``batchqa chaos``, ``batchqa scale-workers``) feed a local cluster: prompts, and the
database (PostgreSQL when reachable, else SQLite)."""

from __future__ import annotations

import logging
from pathlib import Path

from utilities.procs.services import PostgresDatabase

log = logging.getLogger(__name__)

log = logging.getLogger(__name__)


def prompts(count: int, *, tag: str) -> str:
    topics = ("renewable energy", "sourdough baking", "time management", "city cycling", "quantum computing")
    return "\n".join(f"Write a short guide about {topics[i % len(topics)]}, {tag} part {i}" for i in range(count))


def cluster_database(root: Path, use_sqlite: bool) -> tuple[str, PostgresDatabase | None]:
    if not use_sqlite:
        database = PostgresDatabase()
        if database.available() is None:
            return database.create(), database
        log.warning("PostgreSQL is not reachable; the chaos cluster uses SQLite")
    return f"sqlite:///{root / 'chaos.sqlite3'}", None
