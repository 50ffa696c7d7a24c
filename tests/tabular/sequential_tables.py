"""Sequential tables from the Grunfeld investment panel that statsmodels ships (11 US firms x
20 years, 1935-1954; public domain): the panel as it is, and a seeded random truncation of
it (variable sequence lengths) with a per-firm context column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def grunfeld() -> pd.DataFrame:
    from statsmodels.datasets import grunfeld as data

    df = data.load_pandas().data
    df["year"] = df["year"].astype("int64")
    df["firm"] = df["firm"].astype(object)
    return df[["firm", "year", "invest", "value", "capital"]].reset_index(drop=True)


def truncated(seed: int = 0) -> pd.DataFrame:
    """Each firm keeps its first 4 to 20 years (seeded), and carries ``size``: 'large' when
    its mean market value is above the firms' median (constant within each firm)."""
    df = grunfeld()
    rng = np.random.default_rng(seed)
    firms = sorted(df["firm"].unique())
    keep = dict(zip(firms, rng.integers(4, 21, len(firms)), strict=True))
    df = df[df["year"] - 1935 < df["firm"].map(keep)].reset_index(drop=True)
    means = df.groupby("firm")["value"].mean()
    size = (means > means.median()).map({True: "large", False: "small"})
    df.insert(1, "size", df["firm"].map(size).astype(object))
    return df


def write(df: pd.DataFrame, folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    df.to_csv(path, index=False)
    return str(path)


def sequential_spec(source: str, output: str, **extra: Any) -> dict[str, Any]:
    generator = {
        "kind": "sequential",
        "source": source,
        "sequence_key": "firm",
        "sequence_index": "year",
        **extra.pop("generator", {}),
    }
    return {
        "name": "grunfeld",
        "modality": "tabular",
        "rows": 40,
        "shard_rows": 10,
        "seed": 3,
        "output": output,
        "metrics": {"enabled": False},
        "generator": generator,
        **extra,
    }
