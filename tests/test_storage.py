"""Stored originals: local directory and S3 (moto_server) backends, the generated key, the per-user quota."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from reference_backend.batches import create_batch
from reference_backend.database import Store
from reference_backend.ingest import ParsedTable
from reference_backend.models import StoredFile, User
from reference_backend.originals import (
    LocalStorage,
    S3Storage,
    Storage,
    StorageUnavailable,
    original_key,
    sweep_orphans,
)
from utilities.client.api import BatchApi
from utilities.procs.backend import BackendProcess
from utilities.procs.services import MotoServer

pytestmark = pytest.mark.area("Distributed mode")


def _s3(moto: MotoServer, bucket: str, prefix: str = "") -> S3Storage:
    return S3Storage(
        bucket,
        prefix=prefix,
        endpoint_url=moto.endpoint_url,
        region=moto.REGION,
        access_key_id=moto.ACCESS_KEY,
        secret_access_key=moto.SECRET_KEY,
    )


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.distributed)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    moto: MotoServer = request.getfixturevalue("moto_server")
    return _s3(moto, moto.create_bucket(), prefix="team-a")


def _user_id(api: BatchApi) -> int:
    return int(api.http.get("/api/v1/auth/me").json()["id"])


def test_objects_round_trip_and_list_by_prefix(storage: Storage) -> None:
    storage.check()
    storage.put("uploads/1/b1/original.csv", b"prompt\nhello\n")
    storage.put("uploads/1/b1/original.csv", b"prompt\nreplaced\n")
    storage.put("uploads/2/b2/original.txt", b"x")
    assert storage.get("uploads/1/b1/original.csv") == b"prompt\nreplaced\n"
    assert [(o.key, o.size) for o in storage.list("uploads/1/")] == [("uploads/1/b1/original.csv", 16)]
    storage.delete("uploads/1/b1/original.csv")
    storage.delete("uploads/1/b1/original.csv")  # deleting what is gone is not an error
    assert [o.key for o in storage.list("uploads/")] == ["uploads/2/b2/original.txt"]


def test_local_storage_refuses_keys_that_leave_its_directory(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "files")
    for key in ("../escape", "/etc/passwd", "uploads/../../x", ""):
        with pytest.raises(ValueError, match="not a storage key"):
            storage.put(key, b"x")


@pytest.mark.distributed
def test_s3_storage_with_a_missing_bucket_says_so_at_start(moto_server: MotoServer) -> None:
    with pytest.raises(StorageUnavailable, match="no-such-bucket"):
        _s3(moto_server, "no-such-bucket").check()


def test_original_key_is_generated_not_taken_from_the_filename() -> None:
    assert original_key(7, "abc", "../../My Prompts.CSV") == "uploads/7/abc/original.csv"
    assert original_key(7, "abc", None) == "uploads/7/abc/original.txt"
    assert original_key(7, "abc", "weird.e x e") == "uploads/7/abc/original.txt"


def test_upload_keeps_the_original_in_the_data_dir_by_default(api: BatchApi, backend: BackendProcess) -> None:
    text = "Write a haiku about rain\nExplain recursion to a child\n"
    batch = api.upload(text=text)["batch_id"]
    stored = backend.data_dir / "files" / "uploads" / str(_user_id(api)) / batch / "original.txt"
    assert stored.read_bytes() == text.encode()


@pytest.mark.distributed
def test_quota_refuses_an_upload_with_no_batch_and_no_object_left_behind(
    moto_server: MotoServer, s3_bucket: str, start_backend: Callable[..., BackendProcess]
) -> None:
    first = b"prompt\n" + b"".join(f"Describe city number {i} in two sentences\n".encode() for i in range(20))
    second = b"prompt\nWrite a limerick about quotas\n" * 2
    server = start_backend(env={**moto_server.env(s3_bucket), "BATCHQA_USER_QUOTA_BYTES": str(len(first) + 10)})
    with BatchApi.new_user(server.url) as api:
        kept = api.upload(content=first, filename="first.csv")["batch_id"]
        refused = api.upload_raw(content=second, filename="second.csv")
        listed = [b["batch_id"] for b in api.list_batches()]
        user_id = _user_id(api)
    assert refused.status_code == 413
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"] == {"used": len(first), "limit": len(first) + 10, "actual": len(second)}
    assert listed == [kept], "a refused upload created a batch"
    objects = moto_server.client().list_objects_v2(Bucket=s3_bucket).get("Contents", [])
    assert [(o["Key"], o["Size"]) for o in objects] == [(f"uploads/{user_id}/{kept}/original.csv", len(first))]


def test_sweep_deletes_originals_no_batch_refers_to(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.sqlite3'}")
    store.create_schema()
    storage = LocalStorage(tmp_path / "files")
    table = ParsedTable(columns=["prompt"], prompt_column="prompt", rows=[{"prompt": "p"}], source_format="text")
    with store.write() as session:
        session.add(User(id=1, email="u@x.test", password_hash="x"))
    with store.write() as session:
        batch = create_batch(session, user_id=1, table=table, filename=None)
        kept = original_key(1, batch.id, None)
        session.add(StoredFile(user_id=1, batch_id=batch.id, key=kept, bytes=1))
    storage.put(kept, b"p")
    storage.put("uploads/1/crashed-before-commit/original.txt", b"p")
    assert sweep_orphans(store, storage, older_than_seconds=3600) == [], "a young object may be an upload in progress"
    assert sweep_orphans(store, storage, older_than_seconds=0) == ["uploads/1/crashed-before-commit/original.txt"]
    assert [o.key for o in storage.list()] == [kept]
    with store.read() as session:
        assert session.scalars(select(StoredFile.key)).all() == [kept]
    store.dispose()
