"""Uploaded originals in file storage (a local directory or an S3 bucket), under a per-user quota."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .config import Settings
from .database import Store
from .errors import ApiError
from .models import StoredFile, User

log = logging.getLogger(__name__)

UPLOADS = "uploads/"
_EXTENSION = re.compile(r"\.([a-z0-9]{1,8})$")


class StorageUnavailable(RuntimeError):
    """The configured storage cannot be used (missing bucket, wrong endpoint or credentials)."""


class QuotaExceeded(ApiError):
    """The upload would take the user's stored bytes over ``user_quota_bytes``."""

    status = 413
    code = "quota_exceeded"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: float  # seconds since the epoch


class Storage(Protocol):
    description: str

    def check(self) -> None: ...
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str = "") -> list[StoredObject]: ...


class LocalStorage:
    """Objects as files under ``root``; a write lands whole (temporary file, then rename) or not at all."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = f"directory {self.root}"

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root.joinpath(*parts)

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as sink:
                sink.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> list[StoredObject]:
        if not self.root.exists():
            return []
        found = []
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and not path.name.startswith(".partial-") and key.startswith(prefix):
                stat = path.stat()
                found.append(StoredObject(key=key, size=stat.st_size, modified=stat.st_mtime))
        return found


class S3Storage:
    """Objects in an S3 bucket (AWS or any S3-compatible endpoint), optionally under a key prefix."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.description = f"s3://{bucket}/{self.prefix}" + (f" at {endpoint_url}" if endpoint_url else "")
        # Imported here: only S3 storage needs boto3 (the distributed extra).
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise StorageUnavailable(f"{exc}: S3 storage needs boto3, pip install 'batchqa[distributed]'") from exc
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                signature_version="s3v4",
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def check(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"cannot use {self.description}: {exc}") from exc

    def put(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def get(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def presigned_url(self, key: str, *, ttl_seconds: int, content_type: str, disposition: str) -> str:
        """A GET URL for ``key`` that S3 itself serves, and refuses once ``ttl_seconds`` have passed."""
        return self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.prefix + key,
                "ResponseContentType": content_type,
                "ResponseContentDisposition": disposition,
            },
            ExpiresIn=ttl_seconds,
        )

    def list(self, prefix: str = "") -> list[StoredObject]:
        found = []
        for page in self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        ):
            for item in page.get("Contents", ()):
                found.append(
                    StoredObject(
                        key=item["Key"].removeprefix(self.prefix),
                        size=item["Size"],
                        modified=item["LastModified"].timestamp(),
                    )
                )
        return found


def build_storage(settings: Settings) -> Storage:
    """``storage_url`` ``s3://bucket[/prefix]`` or ``file:///dir``; unset: ``files/`` in the data dir."""
    url = settings.storage_url
    if not url:
        return LocalStorage(settings.data_dir / "files")
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"BATCHQA_STORAGE_URL {url!r} names no bucket")
        return S3Storage(
            bucket,
            prefix=prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )
    if url.startswith("file://"):
        return LocalStorage(Path(url.removeprefix("file://")))
    raise ValueError(f"BATCHQA_STORAGE_URL must be s3://bucket[/prefix] or file:///dir, not {url!r}")


def original_key(user_id: int, batch_id: str, filename: str | None) -> str:
    match = _EXTENSION.search((filename or "").lower())
    return f"{UPLOADS}{user_id}/{batch_id}/original.{match.group(1) if match else 'txt'}"


def check_quota(session: Session, *, user_id: int, size: int, limit: int) -> int:
    """Bytes the user has stored; ``QuotaExceeded`` when ``size`` more would pass ``limit``.

    Locks the user's row first, so two uploads of one user, in any API process, are counted one
    after the other instead of both fitting into the same remaining space.
    """
    session.execute(select(User.id).where(User.id == user_id).with_for_update())
    used = session.scalar(select(func.coalesce(func.sum(StoredFile.bytes), 0)).where(StoredFile.user_id == user_id))
    used = int(used or 0)
    if used + size > limit:
        raise QuotaExceeded(
            f"This upload needs {size:,} bytes but only {max(limit - used, 0):,} of your {limit:,}-byte "
            "storage quota are left; delete old batches or ask for a larger quota.",
            used=used,
            limit=limit,
            actual=size,
        )
    return used


def keep_original(
    session: Session, storage: Storage, *, user_id: int, batch_id: str, filename: str | None, data: bytes
) -> str:
    """Record the original in the caller's transaction, then write it; returns the key.

    The write comes last, so a refusal or an error before it leaves nothing behind. If the caller's
    transaction fails after it, the caller deletes the key (``discard``).
    """
    key = original_key(user_id, batch_id, filename)
    session.add(StoredFile(user_id=user_id, batch_id=batch_id, key=key, bytes=len(data)))
    session.flush()
    storage.put(key, data)
    return key


def discard(storage: Storage, key: str) -> None:
    try:
        storage.delete(key)
    except Exception:
        log.warning("could not delete %s after a failed upload; the orphan sweep will", key, exc_info=True)


def sweep_orphans(store: Store, storage: Storage, *, older_than_seconds: float = 3600.0) -> list[str]:
    """Delete stored originals no batch refers to (a process killed between writing one and committing).

    Only objects older than ``older_than_seconds``, so an upload still in its transaction is left alone.
    """
    cutoff = time.time() - older_than_seconds
    candidates = [o for o in storage.list(UPLOADS) if o.modified < cutoff]
    if not candidates:
        return []
    with store.read() as session:
        known = set(session.scalars(select(StoredFile.key).where(StoredFile.key.in_([o.key for o in candidates]))))
    orphans = [o.key for o in candidates if o.key not in known]
    for key in orphans:
        discard(storage, key)
    if orphans:
        log.info("deleted %d orphaned uploads from %s", len(orphans), storage.description)
    return orphans
