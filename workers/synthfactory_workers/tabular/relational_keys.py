"""Keys of relational synthesis: generated primary keys, children counts, and the matching
of non-context foreign keys (a child's parents other than the one it was generated from).

Matching (mostlyai's non-context keys, done with the copula's own draws):

- Quotas keep the cardinality shape. Each parent row carries, like a context parent, how
  many children reference it through this key (a ``__n_<child>__<key>`` column of its
  copula). Those counts are the parent's slots; a shard's ``n`` children take ``n`` of them
  at random (without replacement), or all of them plus extra ones drawn in proportion to
  the counts when there are fewer slots than children.
- Attributes decide which child takes which slot. The child's copula was fitted with the
  referenced parent's columns (``__ref__<key>__<column>``), so each sampled child comes
  with the parent columns it "wants". Children, in a random order, take the nearest parent
  (standardised columns, k-d tree, k nearest) that still has a slot, round by round; those
  left take the remaining slots at random. Every child gets exactly one existing parent:
  referential integrity is 1 by construction.
- Lineage first. When the referenced parent is also a context ancestor of the child (an
  account's branch district and its owner's district), the child's copula also drew
  whether the two agree (``__same__<key>``); those rows take the ancestor's row directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from synthfactory_workers.contract import ShardTask

#: integer keys of non-root tables: start + shard index * STRIDE + row within the shard
STRIDE = 1 << 32
#: nearest parents each child tries before taking a random free slot
NEAREST = 8


def keys_for(start: int | None, shard: ShardTask, n: int, root: bool, whole: bool = False) -> Any:
    """``n`` keys unique across the dataset: root keys from global row numbers, other
    tables' from the shard index and row (``<shard>-<n>`` for text keys). A table generated
    whole (under a lookup root) numbers its rows once for the dataset (``w-<n>``): every
    shard computes the same keys."""
    import numpy as np

    if start is None:
        prefix = "w" if whole else str(shard.index)
        return np.array([f"{prefix}-{i}" for i in range(n)], dtype=object)
    base = 0 if whole else shard.row_start if root else shard.index * STRIDE
    return np.arange(n, dtype=np.int64) + base + start


def children_counts(values: pd.Series, largest: int) -> np.ndarray:
    """A sampled count column as non-negative integers (nulls as 0)."""
    import numpy as np

    x = np.nan_to_num(values.to_numpy(dtype=float), nan=0.0)
    return np.clip(np.round(x), 0, max(largest, 0)).astype(np.int64)


def quotas(counts: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """How many of ``n`` children each parent takes, from its wished ``counts``."""
    import numpy as np

    total = int(counts.sum())
    if total >= n:
        slots = np.repeat(np.arange(len(counts)), counts)
        picked = rng.choice(len(slots), n, replace=False)
        return np.bincount(slots[picked], minlength=len(counts)).astype(np.int64)
    weights = counts / total if total else np.full(len(counts), 1.0 / len(counts))
    return counts + rng.multinomial(n - total, weights)


def standardised(parent: pd.DataFrame, child: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' matching columns scaled by the parents' spread, nulls at the mean."""
    import numpy as np

    p = parent.to_numpy(dtype=float)
    c = child[list(parent.columns)].to_numpy(dtype=float)
    mean = np.nanmean(p, axis=0) if len(p) else np.zeros(p.shape[1])
    mean = np.nan_to_num(mean)
    std = np.nan_to_num(np.nanstd(p, axis=0)) if len(p) else np.ones(p.shape[1])
    std[std == 0] = 1.0
    return np.nan_to_num((p - mean) / std), np.nan_to_num((c - mean) / std)


def match(
    parent: pd.DataFrame,
    child: pd.DataFrame,
    counts: np.ndarray,
    rng: np.random.Generator,
    fixed: np.ndarray | None = None,
) -> np.ndarray:
    """Each child row's parent row (an index into ``parent``); see the module docstring.
    ``parent`` and ``child`` hold the same matching columns; ``fixed``: a parent row
    already chosen (>= 0; it uses one of that parent's slots) or -1 per child."""
    import numpy as np

    n = len(child)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    out = np.full(n, -1, dtype=np.int64) if fixed is None else fixed.astype(np.int64).copy()
    used = np.bincount(out[out >= 0], minlength=len(counts))
    cap = quotas(np.clip(counts - used, 0, None), int((out < 0).sum()), rng)
    if len(parent.columns):
        from scipy.spatial import cKDTree

        p, c = standardised(parent, child)
        k = min(NEAREST, len(parent))
        nearest = cKDTree(p).query(c, k=k)[1].reshape(n, k)
        todo = rng.permutation(np.flatnonzero(out < 0))
        for r in range(k):
            want = nearest[todo, r]
            order = np.argsort(want, kind="stable")  # random priority within each parent
            sorted_want = want[order]
            first = np.searchsorted(sorted_want, sorted_want, side="left")
            rank = np.arange(len(order)) - first
            ok = np.zeros(len(todo), dtype=bool)
            ok[order] = rank < cap[sorted_want]
            out[todo[ok]] = want[ok]
            cap -= np.bincount(want[ok], minlength=len(cap))
            todo = todo[~ok]
    left = np.flatnonzero(out < 0)
    slots = rng.permutation(np.repeat(np.arange(len(cap)), cap))
    out[left] = slots[: len(left)]
    return out


def require_parents(parent: str, child: str, key: str, parents: int, children: int) -> None:
    if children and not parents:
        raise ConfigError(
            f"a shard generated {children} {child} rows whose {key} must reference a {parent} "
            f"row, but the shard holds no {parent} row",
            fix="raise shard_rows (more root rows per shard), or make this relationship "
            "the child's context parent (relationships[i].context: true)",
        )


def whole_rows(total_root: int, source_root: int, source_table: int) -> int:
    """Rows of a lookup table generated whole: its source's rows per root row, scaled."""
    return max(1, round(total_root * source_table / max(source_root, 1)))


def shard_slice(shard: ShardTask, total_root: int, rows: int) -> tuple[int, int]:
    """The rows [lo, hi) of a table generated whole that this shard writes: the shards
    split it in proportion to their root rows, so together they write it exactly once."""
    lo = shard.row_start * rows // max(total_root, 1)
    hi = min(rows, (shard.row_start + shard.rows) * rows // max(total_root, 1))
    return lo, hi
