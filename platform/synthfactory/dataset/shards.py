"""Write one shard: data, rejected rows and sidecar first, the commit marker last."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from synthfactory.dataset import layout, parquet
from synthfactory.dataset.manifest import ShardEntry, TableFile
from synthfactory.errors import GenerationError

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory.storage import ObjectStore


#: key of a shard task's result holding its data schema (not stored in the manifest entry)
SCHEMA_KEY = "arrow_schema"


def schema_summary(table: pa.Table) -> str:
    """The data columns' Arrow schema (sidecar columns left out), base64 IPC."""
    import base64

    data, _ = split_sidecar(table.slice(0, 0))
    return base64.b64encode(data.schema.serialize().to_pybytes()).decode()


def read_schema_summary(summary: str) -> pa.Schema:
    import base64

    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(summary)))


def split_sidecar(table: pa.Table) -> tuple[pa.Table, pa.Table | None]:
    """Columns named ``__*`` are private (dedup hashes): they go to a sidecar file."""
    private = [n for n in table.column_names if n.startswith(layout.SIDECAR_PREFIX)]
    if not private:
        return table, None
    return table.drop_columns(private), table.select(private)


def write_shard(
    store: ObjectStore,
    *,
    index: int,
    row_start: int,
    seed: int,
    max_rows: int,
    table: pa.Table,
    rejected: pa.Table | None = None,
    stats: dict[str, float] | None = None,
    seconds: float = 0.0,
    worker: str = "",
    tables: dict[str, pa.Table] | None = None,
) -> ShardEntry:
    """Persist a generated shard under ``store`` (a version prefix) and commit it.

    Every file is written whole (atomic puts) before the marker, so a marker always
    names complete files; a crash in between leaves an uncommitted shard that a
    re-run simply regenerates.

    ``tables`` (relational jobs): every table of the shard by name, the root table first
    (``table`` is the root table too); each goes to ``data/<name>/part-NNNNN.parquet`` and
    the root table's file is the entry's ``path``.
    """
    if len(table) > max_rows:
        raise GenerationError(
            f"shard {index} produced {len(table)} rows but was asked for {max_rows}",
            fix="a generator must return at most shard.rows rows",
        )
    started = time.perf_counter()
    data, sidecar = split_sidecar(table)
    files = _write_tables(store, index, tables or {})
    path, size, digest = _write_data(store, index, data, files)
    rejected_path = None
    if rejected is not None and len(rejected):
        rejected_path = _put_table(store, layout.rejected_key(index), rejected)
    sidecar_path = (
        None if sidecar is None else _put_table(store, layout.sidecar_key(index), sidecar)
    )
    entry = ShardEntry(
        index=index,
        row_start=row_start,
        seed=seed,
        rows=len(data),
        path=path,
        bytes=size,
        sha256=digest,
        rejected_path=rejected_path,
        rejected_rows=0 if rejected is None else len(rejected),
        sidecar_path=sidecar_path,
        tables=files,
        stats={**(stats or {}), "write_seconds": time.perf_counter() - started},
        seconds=seconds,
        worker=worker,
    )
    store.put_text(layout.marker_key(index), entry.model_dump_json())
    return entry


def _write_tables(
    store: ObjectStore, index: int, tables: dict[str, pa.Table]
) -> dict[str, TableFile]:
    """A relational shard's tables, each to ``data/<name>/part-NNNNN.parquet``."""
    files: dict[str, TableFile] = {}
    for name, part in tables.items():
        blob = parquet.encode(split_sidecar(part)[0])
        key = layout.table_key(name, index)
        store.put_bytes(key, blob)
        files[name] = TableFile(
            path=key, rows=len(part), bytes=len(blob), sha256=parquet.sha256(blob)
        )
    return files


def _write_data(
    store: ObjectStore, index: int, data: pa.Table, files: dict[str, TableFile]
) -> tuple[str, int, str]:
    """(path, bytes, sha256) of the shard's data file: the root table's file of a
    relational shard (written already), else ``data`` written now."""
    if files:
        root = next(iter(files.values()))
        return root.path, root.bytes, root.sha256
    blob = parquet.encode(data)
    path = layout.data_key(index)
    store.put_bytes(path, blob)
    return path, len(blob), parquet.sha256(blob)


def _put_table(store: ObjectStore, key: str, table: pa.Table) -> str:
    store.put_bytes(key, parquet.encode(table))
    return key


def read_marker(store: ObjectStore, key: str) -> ShardEntry | None:
    """A marker, if it and the data file it names are both whole; else None (redo the shard)."""
    try:
        entry = ShardEntry.model_validate_json(store.get_bytes(key))
    except (FileNotFoundError, ValueError):
        return None
    if store.size(entry.path) != entry.bytes:
        return None
    if any(store.size(f.path) != f.bytes for f in entry.tables.values()):
        return None
    return entry
