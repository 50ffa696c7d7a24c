"""Whole-dataset duplicate detection over the private ``__`` sidecar columns.

Generators put compact keys in sidecars; this module decides, deterministically, which
rows repeat an *earlier* row in dataset order (shard index, then position):

    __exact      uint64   equal keys are duplicates (exact text/row hash)
    __lsh_bands  list<uint64>  rows sharing any LSH band hash are near-duplicates (MinHash)
    __phash      uint64   Hamming distance <= the field's ``max_distance`` metadata (default 0)
    __unique_*   uint64   one per uniqueness rule: equal keys repeat an earlier kept row
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

COLUMNS = ("__exact", "__lsh_bands", "__phash")
UNIQUE_PREFIX = "__unique_"


def first_seen(keys: np.ndarray) -> np.ndarray:
    """True where a key already appeared at an earlier position."""
    _, first = np.unique(keys, return_index=True)
    dup = np.ones(len(keys), dtype=bool)
    dup[first] = False
    return dup


def band_duplicates(bands: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """bands: (n, b) uint64. A row is a duplicate if any band matches a kept earlier row."""
    n = len(bands)
    dup = np.zeros(n, dtype=bool)
    owner: list[dict[int, int]] = [{} for _ in range(bands.shape[1])]
    for i in range(n):
        if not alive[i]:
            continue
        row = bands[i]
        if any(int(h) in owner[b] for b, h in enumerate(row)):
            dup[i] = True
            continue
        for b, h in enumerate(row):
            owner[b][int(h)] = i
    return dup


def hamming_duplicates(hashes: np.ndarray, max_distance: int, alive: np.ndarray) -> np.ndarray:
    """A row is a duplicate if its 64-bit hash is within ``max_distance`` bits of a kept
    earlier row. Exact matches use hashing; near matches bit-slice buckets."""
    if max_distance <= 0:
        keys = np.where(
            alive, hashes, np.arange(len(hashes), dtype=np.uint64) ^ np.uint64(0xFFFFFFFFFFFFFFFF)
        )
        return first_seen(keys) & alive
    # Pigeonhole: hashes within d bits agree exactly on at least one of d + 1 bit slices,
    # so each row is compared only with kept rows sharing a slice value.
    bounds = np.linspace(0, 64, max_distance + 2).astype(int)
    slices = [(int(lo), (1 << int(hi - lo)) - 1) for lo, hi in itertools.pairwise(bounds)]
    buckets: list[dict[int, list[int]]] = [{} for _ in slices]
    dup = np.zeros(len(hashes), dtype=bool)
    values = [int(h) for h in np.asarray(hashes, dtype=np.uint64)]
    for i, h in enumerate(values):
        if not alive[i]:
            continue
        parts = [(h >> lo) & mask for lo, mask in slices]
        close = False
        for bucket, key in zip(buckets, parts, strict=True):
            for j in bucket.get(key, ()):
                if (h ^ values[j]).bit_count() <= max_distance:
                    close = True
                    break
            if close:
                break
        if close:
            dup[i] = True
            continue
        for bucket, key in zip(buckets, parts, strict=True):
            bucket.setdefault(key, []).append(i)
    return dup


def duplicate_mask(sidecar: pa.Table) -> tuple[np.ndarray, dict[str, int]]:
    """Rows of the concatenated sidecar that repeat an earlier row, and counts per rule."""
    n = len(sidecar)
    dup = np.zeros(n, dtype=bool)
    counts: dict[str, int] = {}
    if "__exact" in sidecar.column_names:
        keys = sidecar.column("__exact").to_numpy(zero_copy_only=False).astype(np.uint64)
        hit = first_seen(keys)
        counts["exact_duplicate"] = int(hit.sum())
        dup |= hit
    if "__lsh_bands" in sidecar.column_names:
        bands = np.asarray(sidecar.column("__lsh_bands").to_pylist(), dtype=np.uint64)
        hit = band_duplicates(bands.reshape(n, -1), ~dup) if n else np.zeros(0, bool)
        counts["near_duplicate"] = int(hit.sum())
        dup |= hit
    if "__phash" in sidecar.column_names:
        field = sidecar.schema.field("__phash")
        meta = field.metadata or {}
        max_distance = int(meta.get(b"max_distance", b"0"))
        hashes = sidecar.column("__phash").to_numpy(zero_copy_only=False).astype(np.uint64)
        hit = hamming_duplicates(hashes, max_distance, ~dup)
        counts["near_duplicate_image"] = int(hit.sum())
        dup |= hit
    for name in sorted(c for c in sidecar.column_names if c.startswith(UNIQUE_PREFIX)):
        column = sidecar.column(name)
        present = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        keys = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.uint64)
        hit = hamming_duplicates(keys, 0, ~dup & present)
        counts["unique_violation"] = counts.get("unique_violation", 0) + int(hit.sum())
        dup |= hit
    return dup, counts
