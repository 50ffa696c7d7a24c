"""Seeded samples drawn evenly from shards, so sample-based metrics see the whole dataset
and give the same numbers for the same seed however the shards were scheduled."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def quotas(shard_rows: dict[int, int], total: int) -> dict[int, int]:
    """Rows each shard contributes to a ``total``-row sample, proportional to its size
    (largest remainders), never more than it has."""
    rows = sum(shard_rows.values())
    if rows <= total:
        return dict(shard_rows)
    exact = {i: total * n / rows for i, n in shard_rows.items()}
    out = {i: int(v) for i, v in exact.items()}
    spare = total - sum(out.values())
    for i in sorted(exact, key=lambda i: (out[i] - exact[i], i))[:spare]:
        out[i] += 1
    return out


def take(df: pd.DataFrame, rows: int, seed: int, shard: int) -> pd.DataFrame:
    """``rows`` rows of one shard, chosen from (seed, shard)."""
    if rows >= len(df):
        return df
    rng = np.random.default_rng([seed, shard])
    return df.iloc[np.sort(rng.choice(len(df), rows, replace=False))]
