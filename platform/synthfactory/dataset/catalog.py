"""Find and open datasets by following manifests (never by listing data files)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from synthfactory.dataset import layout
from synthfactory.dataset.manifest import Manifest
from synthfactory.errors import ConfigError
from synthfactory.spec.model import StorageOptions
from synthfactory.storage import ObjectStore, open_store

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version found under a root: published/quarantined (has a manifest) or incomplete."""

    uri: str
    prefix: str
    status: str
    manifest: Manifest | None
    progress: dict[str, Any] | None


def list_versions(root: ObjectStore) -> list[VersionInfo]:
    """Every version at most three levels below ``root``, newest first."""
    found: dict[str, VersionInfo] = {}
    keys = root.list()
    for key in keys:
        prefix, _, name = key.rpartition("/")
        if prefix.count("/") > 2 or name not in (layout.MANIFEST, layout.JOB):
            continue
        if name == layout.MANIFEST:
            manifest = Manifest.model_validate_json(root.get_bytes(key))
            found[prefix] = VersionInfo(root.url(prefix), prefix, manifest.status, manifest, None)
        elif prefix not in found and f"{prefix}/{layout.MANIFEST}" not in keys:
            try:
                progress = json.loads(root.get_bytes(f"{prefix}/{layout.PROGRESS}"))
            except FileNotFoundError:
                progress = None
            status = progress.get("state", "incomplete") if progress else "incomplete"
            if status in ("running", "completed"):
                status = "running" if status == "running" else "incomplete"
            found[prefix] = VersionInfo(root.url(prefix), prefix, status, None, progress)
    return sorted(
        found.values(),
        key=lambda v: (v.manifest.created_at if v.manifest else "~", v.prefix),
        reverse=True,
    )


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
        manifest = Manifest.model_validate_json(store.get_bytes(layout.MANIFEST))
        return Dataset(store, manifest)
    except FileNotFoundError:
        pass
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
