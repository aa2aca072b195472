"""The distributed topology in one place: which processes run and which ``BATCHQA_*`` settings each gets.

deploy/compose.yaml spells it out for containers and ``Cluster`` (``services.py``) starts the same roles as
local processes from it (``batchqa chaos``, ``batchqa scale-workers``); tests/test_ci_files.py checks
that the compose file agrees with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

QUEUE_URL = "BATCHQA_QUEUE_URL"
DATABASE_URL = "BATCHQA_DATABASE_URL"
SECRET_KEY = "BATCHQA_SECRET_KEY"
STORAGE = (
    "BATCHQA_STORAGE_URL",
    "BATCHQA_S3_ENDPOINT_URL",
    "BATCHQA_S3_REGION",
    "BATCHQA_S3_ACCESS_KEY_ID",
    "BATCHQA_S3_SECRET_ACCESS_KEY",
)


@dataclass(frozen=True)
class Role:
    """One kind of process: its command, the shared settings it cannot run without, the ones with one value."""

    name: str
    command: tuple[str, ...]
    replicas: int
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    fixed: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def environment(self, shared: Mapping[str, str]) -> dict[str, str]:
        """``shared`` (what every process of a cluster gets) with this role's fixed settings on top."""
        if missing := [name for name in self.required if not shared.get(name)]:
            raise ValueError(f"a {self.name} process needs {', '.join(missing)}")
        return {**shared, **self.fixed}


# API processes run no rows: every row goes through a worker process, as in production. They share one
# signing key, so a token from one is accepted by the others; uploads go to S3 when STORAGE is set.
API = Role(
    name="api",
    command=("batchqa", "serve"),
    replicas=2,
    required=(QUEUE_URL, DATABASE_URL, SECRET_KEY),
    optional=STORAGE,
    fixed=MappingProxyType({"BATCHQA_EMBEDDED_WORKERS": "false"}),
)
WORKER = Role(name="worker", command=("batchqa", "worker"), replicas=3, required=(QUEUE_URL, DATABASE_URL))
ROLES = (API, WORKER)

# What the roles need around them: Redis (wake-ups and progress fan-out; AOF on so a restart keeps its
# data), PostgreSQL (state and the queue itself) and an S3-compatible store (uploaded originals).
BACKING_SERVICES = ("redis", "postgres", "s3")
