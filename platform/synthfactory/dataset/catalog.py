"""Find and open datasets by following manifests (never by listing data files)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from synthfactory.dataset import layout
from synthfactory.dataset.lease import Holder
from synthfactory.dataset.manifest import BrokenManifestError, Manifest, read_manifest
from synthfactory.errors import ConfigError
from synthfactory.spec.storage import StorageOptions
from synthfactory.storage import ObjectStore, open_store

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset


#: a running job's heartbeat in its version folder: {"owner", "expires_at", "host", "pid"},
#: renewed while the job runs and deleted when it ends (see lease.py; older jobs wrote none)
LEASE = layout.LEASE
#: progress states of a job that is still working on a version
LIVE_STATES = ("starting", "running", "evaluating")
#: a job that writes no lease and has not updated its progress for this long is stale
STALE_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version found under a root: published/quarantined (has a manifest), broken (a
    manifest that cannot be read: ``error`` says why) or unfinished (running, crashed, ...)."""

    uri: str
    prefix: str
    status: str
    manifest: Manifest | None
    progress: dict[str, Any] | None
    error: str | None = None
    lease: dict[str, Any] | None = None


def list_versions(root: ObjectStore, now: float | None = None) -> list[VersionInfo]:
    """Every version at most three levels below ``root``, newest first. A manifest that cannot
    be read is listed with status ``broken`` (and its error), never raised: one damaged
    version must not hide its neighbours."""
    found: dict[str, VersionInfo] = {}
    keys = root.list()
    present = set(keys)
    when = time.time() if now is None else now
    for key in keys:
        prefix, _, name = key.rpartition("/")
        if prefix.count("/") > 2 or name not in (layout.MANIFEST, layout.JOB):
            continue
        if name == layout.MANIFEST:
            try:
                manifest = read_manifest(root, key)
            except FileNotFoundError:  # deleted since the listing (a quarantine move)
                continue
            except BrokenManifestError as exc:
                found[prefix] = VersionInfo(
                    root.url(prefix), prefix, "broken", None, None, error=str(exc)
                )
                continue
            found[prefix] = VersionInfo(root.url(prefix), prefix, manifest.status, manifest, None)
        elif prefix not in found and f"{prefix}/{layout.MANIFEST}" not in present:
            progress = _read_json(root, f"{prefix}/{layout.PROGRESS}", present)
            lease = _read_json(root, f"{prefix}/{LEASE}", present)
            status = unfinished_status(progress, lease, when)
            found[prefix] = VersionInfo(
                root.url(prefix), prefix, status, None, progress, lease=lease
            )
    return sorted(
        found.values(),
        key=lambda v: (v.manifest.created_at if v.manifest else "~", v.prefix),
        reverse=True,
    )


def unfinished_status(
    progress: dict[str, Any] | None, lease: dict[str, Any] | None, now: float
) -> str:
    """What a version without a manifest is doing. ``crashed``: its job's lease expired
    without the job finishing; ``stale``: a job that writes no lease stopped reporting
    progress; else the progress state (``running`` while a live lease holds it)."""
    state = str(progress.get("state", "incomplete")) if progress else "incomplete"
    if state == "completed":  # the manifest was not written: the job ended before its commit
        state = "incomplete"
    if lease is not None:
        expires = lease.get("expires_at")
        if isinstance(expires, (int, float)) and not isinstance(expires, bool):
            holder = Holder.from_dict(lease)
            alive = expires >= now and not (holder is not None and holder.dead())
            if alive:  # the job is alive (perhaps committing: no new progress)
                return "running" if state == "incomplete" else state
            return state if state == "failed" else "crashed"
    if state in LIVE_STATES and progress is not None:
        updated = progress.get("updated_at")
        age = now - float(updated) if isinstance(updated, (int, float)) else float("inf")
        if age > STALE_SECONDS:
            return "stale"
    return state


def _read_json(store: ObjectStore, key: str, present: set[str]) -> dict[str, Any] | None:
    """A small advisory JSON record (progress, lease); None when missing or unreadable (a
    writer may be halfway through replacing it)."""
    if key not in present:
        return None
    try:
        value = json.loads(store.get_bytes(key))
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class Dataset:
    """A committed dataset version, read through its manifest."""

    def __init__(self, store: ObjectStore, manifest: Manifest) -> None:
        self.store = store
        self.manifest = manifest

    @property
    def uri(self) -> str:
        return self.store.uri

    @property
    def files(self) -> list[str]:
        return [self.store.url(s.path) for s in self.manifest.shards]

    def to_arrow(self) -> pa.Table:
        import pyarrow as pa

        from synthfactory.dataset.parquet import decode

        tables = [decode(self.store.get_bytes(s.path)) for s in self.manifest.shards]
        if not tables:
            return self.manifest.data_schema.to_arrow().empty_table()
        return pa.concat_tables(tables, promote_options="default")

    def to_pandas(self) -> pd.DataFrame:
        return self.to_arrow().to_pandas()

    @property
    def table_names(self) -> list[str]:
        """A relational dataset's tables, the root first (empty for a single table)."""
        return list(self.manifest.tables)

    def _table_paths(self, name: str) -> list[str]:
        if name not in self.manifest.tables:
            known = self.table_names
            raise ConfigError(
                f"{self.uri} has no table {name!r}"
                + (f"; its tables: {known}" if known else " (it is a single-table dataset)"),
                fix="use one of the tables the manifest lists"
                if known
                else "use to_arrow() / to_pandas()",
            )
        return [s.tables[name].path for s in self.manifest.shards if name in s.tables]

    def table_files(self, name: str) -> list[str]:
        """URIs of one table's files (relational datasets), e.g. for DuckDB or Spark."""
        return [self.store.url(p) for p in self._table_paths(name)]

    def table(self, name: str) -> pa.Table:
        """One table of a relational dataset, every committed shard's rows of it."""
        import pyarrow as pa

        from synthfactory.dataset.parquet import decode

        paths = self._table_paths(name)
        tables = [decode(self.store.get_bytes(p)) for p in paths]
        if not tables:
            return self.manifest.tables[name].data_schema.to_arrow().empty_table()
        return pa.concat_tables(tables, promote_options="default")

    def arrow_dataset(self, table: str | None = None) -> pyarrow.dataset.Dataset:
        """A lazy pyarrow dataset over exactly the committed shard files (of one ``table``
        of a relational dataset). DuckDB scans it where it cannot read the store itself
        (S3 without its httpfs extension): ``orders = ds.arrow_dataset("orders");
        duckdb.sql("select count(*) from orders")``."""
        import pyarrow.dataset as ds

        fs, root = self.store.arrow_filesystem()
        if table is None:
            paths = [f"{root}/{s.path}" for s in self.manifest.shards]
            schema = self.manifest.data_schema.to_arrow()
        else:
            paths = [f"{root}/{p}" for p in self._table_paths(table)]
            schema = self.manifest.tables[table].data_schema.to_arrow()
        return ds.dataset(paths, filesystem=fs, format="parquet", schema=schema)

    def head(self, n: int = 5) -> pa.Table:
        from synthfactory.dataset.parquet import decode

        if not self.manifest.shards:
            return self.manifest.data_schema.to_arrow().empty_table()
        return decode(self.store.get_bytes(self.manifest.shards[0].path)).slice(0, n)


def open_dataset(uri: str, options: StorageOptions | None = None) -> Dataset:
    """Open a version (``.../v-abc``) or the newest published version under a dataset root."""
    store = open_store(uri, options)
    try:
        return Dataset(store, read_manifest(store))
    except FileNotFoundError:
        pass
    # a version with a broken manifest is skipped here (``list_versions`` reports it)
    versions = [v for v in list_versions(store) if v.manifest is not None]
    published = [v for v in versions if v.status == "published"]
    if not published:
        held = [v.uri for v in versions]
        raise ConfigError(
            f"no published dataset at {uri}"
            + (f" (quarantined: {', '.join(held)})" if held else ""),
            fix="open a quarantined version by its full URI, run the job to completion, or "
            "see `synthfactory datasets ls`",
        )
    best = published[0]
    assert best.manifest is not None
    return Dataset(store.child(best.prefix) if best.prefix else store, best.manifest)
