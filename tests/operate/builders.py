"""Dataset versions for the dashboard tests, written with the platform's own shard writer and
manifest (no Ray, no Prefect): published ones with chosen values, unfinished ones with chosen
progress and lease records, and broken manifests."""

from __future__ import annotations

import io
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from synthfactory.dataset import DatasetVersion, write_shard
from synthfactory.dataset.manifest import Manifest, SchemaInfo
from synthfactory.storage import open_store


def png(color: tuple[int, int, int] = (200, 30, 30), size: int = 16) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, format="PNG")
    return out.getvalue()


def images(cells: list[bytes | None]) -> pa.Array:
    """An image column in the struct Hugging Face `datasets` reads ({bytes, path})."""
    return pa.array(
        [{"bytes": c, "path": None} for c in cells],
        pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )


def publish(
    root: Path,
    prefix: str,
    table: pa.Table,
    *,
    name: str = "ds",
    description: str = "",
    gates: list[dict[str, Any]] | None = None,
    flow_run_id: str = "",
    status: str = "published",
) -> str:
    """A committed version ``root/prefix`` holding ``table``; returns its URI."""
    version = DatasetVersion(open_store(str(root)), prefix)
    spec = {"name": name, "description": description, "output": str(root)}
    version.claim(spec, f"hash-{prefix}")
    entry = write_shard(
        version.store, index=0, row_start=0, seed=1, max_rows=len(table), table=table
    )
    manifest = Manifest.model_validate(
        {
            "name": name,
            "version": prefix.rsplit("/", 1)[-1],
            "modality": "tabular",
            "rows": len(table),
            "target_rows": len(table),
            "shards": [entry.model_dump()],
            "schema": SchemaInfo.from_arrow(table.schema).model_dump(),
            "spec": spec,
            "spec_hash": f"hash-{prefix}",
            "status": status,
            "gates": gates or [],
            "flow_run": {"id": flow_run_id} if flow_run_id else {},
        }
    )
    version.publish(manifest)
    return version.uri


def unfinished(
    root: Path,
    prefix: str,
    *,
    name: str = "job",
    state: str = "running",
    progress_age: float = 0.0,
    lease_expires_in: float | None = None,
    lease_text: str | None = None,
    host: str = "worker-1",
) -> Path:
    """A version a job is writing (or was): ``_job.json``, ``_progress.json`` updated
    ``progress_age`` seconds ago and, when asked, ``_lease.json`` expiring in
    ``lease_expires_in`` seconds (negative: expired) or holding ``lease_text``."""
    folder = root / prefix
    folder.mkdir(parents=True)
    now = time.time()
    (folder / "_job.json").write_text(json.dumps({"spec": {"name": name}, "spec_hash": "h"}))
    progress = {
        "name": name,
        "version": prefix.rsplit("/", 1)[-1],
        "uri": str(folder),
        "state": state,
        "target_rows": 1000,
        "rows_done": 250,
        "started_at": now - progress_age - 30,
        "updated_at": now - progress_age,
    }
    (folder / "_progress.json").write_text(json.dumps(progress))
    if lease_expires_in is not None:
        expires = now + lease_expires_in
        lease = {"owner": "run-1234", "host": host, "pid": 4242, "expires_at": expires}
        (folder / "_lease.json").write_text(json.dumps(lease))
    if lease_text is not None:
        (folder / "_lease.json").write_text(lease_text)
    return folder


def break_manifest(good: Path, folder: Path) -> Path:
    """``folder/manifest.json``: the first half of the manifest at ``good`` (a write cut
    short), beside a ``_job.json`` as a real version has."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_job.json").write_text(json.dumps({"spec": {"name": "cut"}, "spec_hash": "h"}))
    data = good.read_bytes()
    (folder / "manifest.json").write_bytes(data[: len(data) // 2])
    return folder


def wait_for_first_shard(proc: subprocess.Popen[str], out: Path) -> None:
    """Until a running ``synthfactory run`` has committed a shard under ``out`` and holds its
    lease (at most 240 s); it must still be running then."""
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if list(out.glob("*/_shards/*.json")) and list(out.glob("*/_lease.json")):
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[0]
