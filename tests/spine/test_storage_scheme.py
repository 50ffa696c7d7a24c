"""A storage scheme is one ``ObjectStore`` subclass plus one ``STORES.add`` line: a toy
``mem://`` store (objects in a dict of this process) registered here holds a dataset that
is written, leased, published and read back, feeds a source table, and serves the
dashboard, whose containment rule is the scheme's own; its settings (``storage.mem`` in a
spec) are its own model, validated with the spec and handed to it when it is opened."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from pydantic import Field, ValidationError

from synthfactory.errors import StorageError
from synthfactory.spec.base import Strict
from synthfactory.spec.storage import StorageOptions
from synthfactory.storage import (
    STORES,
    ObjectStore,
    forwarded_env,
    inside,
    open_store,
    parent_uri,
    secret_env,
    split_uri,
)

from .test_storage import exercise

if TYPE_CHECKING:
    import pyarrow.fs


class MemorySettings(Strict):
    """``storage.mem``: the toy scheme's own settings."""

    max_object_mb: int = Field(16, ge=1, description="Largest object the space accepts.")


class MemoryStore(ObjectStore):
    """``mem://space/prefix``: objects in a dict of this process (a test double: actors in
    other processes do not see it). ``split`` and ``contains`` are the base class's rules
    for ``scheme://a/b`` URIs; a scheme with other rules overrides them."""

    OBJECTS: ClassVar[dict[str, bytes]] = {}
    LOCK: ClassVar[threading.Lock] = threading.Lock()
    FORWARDED_ENV = ("MEM_SPACE",)
    Options = MemorySettings

    def __init__(self, uri: str, settings: MemorySettings | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.root = self.uri.removeprefix("mem://")
        self.settings = settings or MemorySettings()

    def _full(self, key: str) -> str:
        return f"{self.root}/{key}"

    def child(self, *parts: str) -> MemoryStore:
        return MemoryStore("/".join([self.uri, *(p.strip("/") for p in parts)]), self.settings)

    def put_bytes(self, key: str, data: bytes) -> None:
        if len(data) > self.settings.max_object_mb * 2**20:
            raise StorageError(f"{self.url(key)}: over {self.settings.max_object_mb} MB")
        self.OBJECTS[self._full(key)] = bytes(data)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.OBJECTS[self._full(key)]
        except KeyError:
            raise FileNotFoundError(self.url(key)) from None

    def size(self, key: str) -> int | None:
        data = self.OBJECTS.get(self._full(key))
        return None if data is None else len(data)

    def list(self, prefix: str = "") -> list[str]:
        start = self._full(prefix)
        return sorted(k[len(self.root) + 1 :] for k in list(self.OBJECTS) if k.startswith(start))

    def delete(self, key: str) -> None:
        self.OBJECTS.pop(self._full(key), None)

    def check_access(self, write: bool = True) -> None:
        return None

    def arrow_filesystem(self) -> tuple[pyarrow.fs.FileSystem, str]:
        raise StorageError(f"{self.uri} has no Arrow filesystem", fix="read with to_arrow()")

    def read_tagged(self, key: str) -> tuple[bytes, str] | None:
        data = self.OBJECTS.get(self._full(key))
        return None if data is None else (data, hashlib.sha256(data).hexdigest())

    def put_if(self, key: str, data: bytes, tag: str | None) -> bool:
        with self.LOCK:
            current = self.read_tagged(key)
            if (current[1] if current else None) != tag:
                return False
            self.put_bytes(key, data)
            return True

    def delete_if(self, key: str, tag: str) -> bool:
        with self.LOCK:
            current = self.read_tagged(key)
            if current is None or current[1] != tag:
                return False
            self.delete(key)
            return True


@pytest.fixture
def mem_scheme() -> Iterator[None]:
    """``mem://`` registered for one test (the registry is restored afterwards)."""
    STORES.add("mem", f"{__name__}:MemoryStore")  # the one registration a scheme needs
    yield
    STORES.remove("mem")
    MemoryStore.OBJECTS.clear()


def write_version(root: ObjectStore, version: str, rows: int = 10) -> None:
    """A published one-shard version, the way the flow writes it (claim, lease, shard,
    marker, verified manifest)."""
    from synthfactory.dataset import DatasetVersion, write_shard
    from synthfactory.dataset.lease import Lease
    from synthfactory.dataset.manifest import Manifest, SchemaInfo

    target = DatasetVersion(root, version)
    target.lease = Lease(target.store)
    assert target.lease.try_acquire() is None, "nobody else holds it"
    target.claim({"name": "toy"}, "hash-1")
    table = pa.table({"x": list(range(rows)), "y": [f"r{i}" for i in range(rows)]})
    entry = write_shard(target.store, index=0, row_start=0, seed=1, max_rows=rows, table=table)
    assert list(target.committed_shards()) == [0]
    manifest = Manifest.model_validate(
        {
            "name": "toy",
            "version": version,
            "modality": "tabular",
            "rows": rows,
            "shards": [entry.model_dump()],
            "schema": SchemaInfo.from_arrow(table.schema).model_dump(),
            "spec": {},
            "spec_hash": "hash-1",
            "status": "published",
        }
    )
    target.publish(manifest)
    target.lease.release()


def test_the_toy_store_keeps_the_store_contract(mem_scheme: None) -> None:
    store = open_store("mem://lab/objects")
    assert isinstance(store, MemoryStore)
    exercise(store)
    assert store.put_if("k", b"one", None) and not store.put_if("k", b"two", None)


def test_a_dataset_is_written_to_the_toy_scheme_and_read_back(mem_scheme: None) -> None:
    from synthfactory.dataset import list_versions, open_dataset

    write_version(open_store("mem://lab/out"), "v-1")
    (info,) = list_versions(open_store("mem://lab/out"))
    assert info.uri == "mem://lab/out/v-1" and info.status == "published"
    ds = open_dataset("mem://lab/out")
    assert ds.uri == "mem://lab/out/v-1"
    assert ds.to_arrow().column("x").to_pylist() == list(range(10))
    assert ds.files == ["mem://lab/out/v-1/data/part-00000.parquet"]


def test_a_source_table_is_read_from_the_toy_scheme(mem_scheme: None) -> None:
    from synthfactory.sources import fingerprint, read_table

    open_store("mem://lab/src").put_text("people.csv", "name,age\nada,36\nalan,41\n")
    table = read_table("mem://lab/src/people.csv")
    assert table.column("age").to_pylist() == [36, 41]
    assert len(fingerprint("mem://lab/src/people.csv")) == 64


def test_the_scheme_owns_its_uri_rules(mem_scheme: None, tmp_path: Path) -> None:
    assert split_uri("mem://lab/out/v-1") == ("mem://lab/out", "v-1")
    assert parent_uri("s3://bucket/a/b.csv") == "s3://bucket/a"
    assert split_uri(str(tmp_path / "a.csv")) == (str(tmp_path), "a.csv")
    assert split_uri(f"file://{tmp_path}/a.csv") == (str(tmp_path), "a.csv")
    roots = ["mem://lab/out"]
    assert inside("mem://lab/out", roots) and inside("mem://lab/out/v-1", roots)
    for uri in ("mem://lab/outx", "mem://lab/out/../x", "mem://lab/out/./v", "s3://lab/out/v"):
        assert not inside(uri, roots), uri
    assert not inside("gs://lab/out/v-1", ["gs://lab/out"]), "an unknown scheme is nowhere"
    assert inside(f"{tmp_path}/a/../b", [str(tmp_path)])
    assert not inside(f"{tmp_path}/../b", [str(tmp_path)])
    assert "MEM_SPACE" in forwarded_env() and "AWS_REGION" in forwarded_env()
    assert "AWS_SECRET_ACCESS_KEY" in secret_env() and "MEM_SPACE" not in secret_env()


def test_the_scheme_owns_its_settings(mem_scheme: None) -> None:
    from synthfactory.spec import JobSpec
    from synthfactory.storage.s3 import S3Settings

    spec = {"name": "t", "modality": "tabular", "rows": 1, "output": "mem://lab/out"}
    spec["generator"] = {"kind": "python", "factory": "synthfactory_workers.demo:SequenceGenerator"}
    job = JobSpec.model_validate({**spec, "storage": {"mem": {"max_object_mb": 1}}})
    store = open_store(job.output, job.storage)
    assert isinstance(store, MemoryStore) and store.settings.max_object_mb == 1
    assert store.child("v-1").settings.max_object_mb == 1
    with pytest.raises(StorageError, match="over 1 MB"):
        store.put_bytes("big", b"x" * (2**20 + 1))
    # the section survives the trip to an actor (the spec travels as JSON)
    again = StorageOptions.model_validate(job.storage.model_dump(mode="json"))
    assert again.settings(MemorySettings).max_object_mb == 1
    assert again.settings(S3Settings) == S3Settings(), "another scheme keeps its defaults"
    # a setting only one scheme has may stand at the top of storage: (the shorthand)
    short = StorageOptions.model_validate({"max_object_mb": 2})
    assert short.settings(MemorySettings).max_object_mb == 2
    bad = {"mem": {"max_object_mb": 0}}, {"mem": {"bucket_key": "x"}}, {"mem_key": "x"}
    for storage in bad:
        with pytest.raises(ValidationError, match=r"storage\.mem"):
            JobSpec.model_validate({**spec, "storage": storage})
    STORES.add("mem2", f"{__name__}:MemoryStore")  # two schemes with the same setting
    try:
        with pytest.raises(ValidationError, match=r"storage\.mem\.max_object_mb"):
            StorageOptions.model_validate({"max_object_mb": 2})
    finally:
        STORES.remove("mem2")
    schema = StorageOptions.model_json_schema()["properties"]
    assert schema["mem"]["properties"]["max_object_mb"]["description"]


def test_the_dashboard_reads_the_toy_scheme_inside_its_roots_only(mem_scheme: None) -> None:
    from synthfactory_flows.dashboard.app import create_app

    write_version(open_store("mem://lab/out"), "v-1")
    write_version(open_store("mem://lab/out"), "v-2", rows=4)
    write_version(open_store("mem://lab/secret"), "v-1")
    client = TestClient(create_app(["mem://lab/out"]))
    listed = client.get("/api/datasets").json()["datasets"]
    assert sorted(row["uri"] for row in listed) == ["mem://lab/out/v-1", "mem://lab/out/v-2"]
    detail = client.get("/api/dataset", params={"uri": "mem://lab/out/v-1"})
    assert detail.status_code == 200 and detail.json()["manifest"]["rows"] == 10
    overview = client.get("/api/dataset/overview", params={"uri": "mem://lab/out/v-2"})
    versions = [v["uri"] for v in overview.json()["trend"]["versions"]]
    assert sorted(versions) == ["mem://lab/out/v-1", "mem://lab/out/v-2"]
    for uri in ("mem://lab/secret/v-1", "mem://lab/out/../secret/v-1", "mem://lab/outx"):
        assert client.get("/api/dataset", params={"uri": uri}).status_code == 403, uri
