"""Choose the dataset's rows: drop whole-dataset duplicates, then keep exactly the target.

Runs after shards are committed. Shards are never edited in place: a shard that loses
rows is written again under a new name, and the manifest (written last) names the new
file, so a crash here leaves the previous state intact and a re-run does the same again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synthfactory.dataset import ShardEntry, parquet
from synthfactory.dataset.dedup import duplicate_mask
from synthfactory.storage import ObjectStore
from synthfactory_workers.contract import Quotas, quota_key


@dataclass
class Selection:
    keep: dict[int, np.ndarray]
    """Per shard index: which of its rows survive dedup (before trimming)."""
    accepted: int
    produced: int
    dropped: dict[str, int] = field(default_factory=dict)


def select(store: ObjectStore, entries: list[ShardEntry]) -> Selection:
    """Dedup across every shard, in shard order, using the sidecar keys."""
    import pyarrow as pa

    keep = {e.index: np.ones(e.rows, dtype=bool) for e in entries}
    produced = sum(e.rows for e in entries)
    with_sidecar = [e for e in entries if e.sidecar_path]
    if not with_sidecar:
        return Selection(keep, produced, produced)
    tables = [
        parquet.decode(store.get_bytes(e.sidecar_path)) for e in with_sidecar if e.sidecar_path
    ]
    sidecar = pa.concat_tables(tables, promote_options="default")
    dup, counts = duplicate_mask(sidecar)
    offset = 0
    for entry in with_sidecar:
        keep[entry.index] = ~dup[offset : offset + entry.rows]
        offset += entry.rows
    accepted = int(sum(mask.sum() for mask in keep.values()))
    return Selection(keep, accepted, produced, counts)


def trim(selection: Selection, entries: list[ShardEntry], target: int) -> dict[int, np.ndarray]:
    """Final masks holding exactly ``min(target, accepted)`` rows, earliest rows first."""
    remaining = target
    final: dict[int, np.ndarray] = {}
    for entry in entries:
        mask = selection.keep[entry.index].copy()
        kept = np.flatnonzero(mask)
        if len(kept) > remaining:
            mask[kept[remaining:]] = False
        remaining -= int(mask.sum())
        final[entry.index] = mask
    return final


class ClassLabels:
    """Per class of a quota column: rows kept so far, and what is still missing. Each
    shard's column is read once (a committed shard file never changes)."""

    def __init__(self, store: ObjectStore, quotas: Quotas) -> None:
        self.store, self.quotas = store, quotas
        self._keys: dict[str, np.ndarray] = {}

    def keys(self, entry: ShardEntry) -> np.ndarray:
        if entry.path not in self._keys:
            column = parquet.decode(self.store.get_bytes(entry.path), [self.quotas.column])
            values = column.column(0).to_pylist()
            self._keys[entry.path] = np.array([quota_key(v) for v in values], dtype=str)
        return self._keys[entry.path]

    def missing(self, selection: Selection, entries: list[ShardEntry]) -> dict[str, int]:
        """Rows each class still lacks among the rows that survived dedup."""
        have: dict[str, int] = {}
        for entry in entries:
            kept = self.keys(entry)[selection.keep[entry.index]]
            for k, n in zip(*np.unique(kept, return_counts=True), strict=True):
                have[str(k)] = have.get(str(k), 0) + int(n)
        wanted = self.quotas.counts.items()
        return {k: want - have.get(k, 0) for k, want in wanted if have.get(k, 0) < want}

    def trim(self, selection: Selection, entries: list[ShardEntry]) -> dict[int, np.ndarray]:
        """Final masks holding at most each class's quota, earliest rows first (so a combined
        dataset keeps every source row); rows of a class with no quota are dropped."""
        remaining = dict(self.quotas.counts)
        final: dict[int, np.ndarray] = {}
        for entry in entries:
            mask = selection.keep[entry.index].copy()
            kept = np.flatnonzero(mask)
            keys = self.keys(entry)[kept]
            for k in np.unique(keys):
                rows = kept[keys == k]
                left = remaining.get(str(k), 0)
                mask[rows[left:]] = False
                remaining[str(k)] = max(0, left - len(rows))
            final[entry.index] = mask
        return final


def rewrite(
    store: ObjectStore, entry: ShardEntry, mask: np.ndarray, dup_mask: np.ndarray
) -> ShardEntry:
    """Write the surviving rows of a shard as a new file; duplicates go to rejected rows."""
    import pyarrow as pa

    if mask.all():
        return entry
    table = parquet.decode(store.get_bytes(entry.path))
    kept = table.filter(pa.array(mask))
    stem = entry.path.removesuffix(".parquet")
    path = f"{stem}-sel.parquet"
    blob = parquet.encode(kept)
    store.put_bytes(path, blob)
    rejected_path = entry.rejected_path
    rejected_rows = entry.rejected_rows
    dups = table.filter(pa.array(~dup_mask))
    if len(dups):
        dups = dups.append_column("reason", pa.array(["duplicate_across_dataset"] * len(dups)))
        if entry.rejected_path:
            earlier = parquet.decode(store.get_bytes(entry.rejected_path))
            dups = pa.concat_tables([earlier, dups], promote_options="permissive")
        rejected_path = f"rejected/{stem.rpartition('/')[2]}-sel.parquet"
        store.put_bytes(rejected_path, parquet.encode(dups))
        rejected_rows = len(dups)
    return entry.model_copy(
        update={
            "path": path,
            "rows": len(kept),
            "bytes": len(blob),
            "sha256": parquet.sha256(blob),
            "rejected_path": rejected_path,
            "rejected_rows": rejected_rows,
            "stats": {**entry.stats, "rows_generated": float(entry.rows)},
        }
    )
