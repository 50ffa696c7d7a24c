"""Local and S3 stores behave the same; S3 runs over real HTTP against moto's server."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pyarrow as pa
import pytest

from synthfactory.errors import StorageAccessError
from synthfactory.storage import LocalStore, ObjectStore, S3Store, open_store
from synthfactory.storage.s3 import S3Settings


def exercise(store: ObjectStore) -> None:
    store.put_bytes("a/b/one.bin", b"12345")
    store.put_text("a/two.txt", "hello")
    assert store.get_bytes("a/b/one.bin") == b"12345"
    assert store.size("a/b/one.bin") == 5
    assert store.size("missing") is None
    assert not store.exists("missing")
    assert store.list("a/") == ["a/b/one.bin", "a/two.txt"]
    assert store.child("a").list() == ["b/one.bin", "two.txt"]
    with pytest.raises(FileNotFoundError):
        store.get_bytes("missing")
    store.put_bytes("a/two.txt", b"replaced")
    assert store.get_text("a/two.txt") == "replaced"
    store.delete("a/two.txt")
    assert store.list() == ["a/b/one.bin"]
    store.copy("a/b/one.bin", "c/one.bin")
    assert store.get_bytes("c/one.bin") == b"12345" and store.exists("a/b/one.bin")
    store.delete("c/one.bin")
    assert store.list() == ["a/b/one.bin"]


def test_local_store(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "root"))
    assert isinstance(store, LocalStore)
    exercise(store)
    assert not list((tmp_path / "root").rglob("*.tmp"))


def test_local_store_refuses_a_file_as_root(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageAccessError, match="is a file"):
        open_store(str(tmp_path / "file" / "sub")).check_access()


def test_s3_store(s3_bucket: str) -> None:
    store = open_store(f"{s3_bucket}/some/prefix")
    assert isinstance(store, S3Store)
    store.check_access()
    exercise(store)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_quarantine_moves_a_version_and_a_rerun_restores_it(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from synthfactory.dataset import DatasetVersion, list_versions, write_shard
    from synthfactory.dataset.manifest import Manifest, SchemaInfo

    root = open_store(
        str(tmp_path / "out") if where == "local" else f"{request.getfixturevalue('s3_bucket')}/q"
    )
    version = DatasetVersion(root, "v-1")
    version.claim({"name": "x"}, "hash-1")
    table = pa.table({"x": list(range(10))})
    entry = write_shard(version.store, index=0, row_start=0, seed=1, max_rows=10, table=table)
    manifest = Manifest.model_validate(
        {
            "name": "x",
            "version": "v-1",
            "modality": "tabular",
            "rows": 10,
            "shards": [entry.model_dump()],
            "schema": SchemaInfo.from_arrow(table.schema).model_dump(),
            "spec": {},
            "spec_hash": "hash-1",
            "status": "quarantined",
        }
    )
    before = version.store.list()
    moved = version.quarantine(manifest)
    assert version.store.list() == [] and moved.store.list() == sorted([*before, "manifest.json"])
    (info,) = list_versions(root)
    assert info.prefix == "_quarantine/v-1" and info.status == "quarantined"
    assert not version.restore_quarantined("another-hash")  # a different job keeps its copy
    assert version.restore_quarantined("hash-1")
    assert version.store.list() == before and moved.store.list() == []
    assert list(version.committed_shards()) == [0]
    if where == "local":
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["v-1"]


def test_s3_multipart_upload(s3_bucket: str, s3_endpoint: str) -> None:
    store = S3Store(f"{s3_bucket}/big", S3Settings(multipart_threshold_mb=5))
    blob = os.urandom(11 * 1024 * 1024)
    store.put_bytes("blob.bin", blob)
    assert store.get_bytes("blob.bin") == blob
    bucket = s3_bucket.removeprefix("s3://")
    head = boto3.client("s3", endpoint_url=s3_endpoint).head_object(
        Bucket=bucket, Key="big/blob.bin"
    )
    assert "-" in head["ETag"], "a multipart upload has an ETag with a part count"


def test_s3_missing_bucket_is_a_clear_error(s3_endpoint: str) -> None:
    with pytest.raises(StorageAccessError) as info:
        open_store("s3://no-such-bucket-here/x").check_access()
    assert "s3://no-such-bucket-here/x" in str(info.value)
    assert "does not exist" in str(info.value)
    assert "fix:" in str(info.value)


def test_s3_store_pickles_without_its_client(s3_bucket: str) -> None:
    import pickle

    store = S3Store(s3_bucket)
    store.put_text("k", "v")
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get_text("k") == "v"
    assert clone.client is not store.client, "an unpickled store makes its own client"


def test_children_share_their_parents_client(s3_bucket: str) -> None:
    """A client costs ~0.15 s of CPU to make: a version's stores (``child``) share one."""
    root = S3Store(s3_bucket)
    version = root.child("v-1")
    version.put_text("a", "1")  # the first use, in a child, makes the client
    shard = version.child("data")
    assert shard.client is version.client is root.client
    assert root.get_text("v-1/a") == "1"


def test_arrow_filesystem_reads_what_the_store_wrote(s3_bucket: str) -> None:
    store = open_store(f"{s3_bucket}/fs")
    store.put_bytes("x.bin", b"abc")
    fs, root = store.arrow_filesystem()
    with fs.open_input_file(f"{root}/x.bin") as fh:
        assert fh.read() == b"abc"
