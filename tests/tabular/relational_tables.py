"""A two-level relational table set from the Palmer penguins shipped in examples/data:
islands -> colonies (one per species, island and year) -> penguins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .tables import PENGUINS


def penguin_tables() -> dict[str, pd.DataFrame]:
    df = pd.read_csv(PENGUINS)
    islands = (
        df.groupby("island", sort=True)
        .agg(mean_body_mass_g=("body_mass_g", "mean"), species_seen=("species", "nunique"))
        .reset_index()
    )
    islands.insert(0, "island_id", range(1, len(islands) + 1))
    islands["mean_body_mass_g"] = islands["mean_body_mass_g"].round(1)
    colonies = df.groupby(["island", "species", "year"], sort=True).size().reset_index()
    colonies = colonies.drop(columns=0)
    colonies.insert(0, "colony_id", [f"C{i:03d}" for i in range(len(colonies))])
    colonies = colonies.merge(islands[["island", "island_id"]], on="island").drop(columns="island")
    penguins = df.merge(
        colonies.merge(islands[["island", "island_id"]], on="island_id"),
        on=["island", "species", "year"],
    )
    penguins = penguins.drop(columns=["island", "species", "year", "island_id"])
    return {"islands": islands, "colonies": colonies, "penguins": penguins}


def write_tables(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in penguin_tables().items():
        path = folder / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        paths[name] = str(path)
    return paths


def relational_spec(paths: dict[str, str], output: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "penguin-colonies",
        "modality": "tabular",
        "rows": 60,
        "shard_rows": 20,
        "output": output,
        "metrics": {"enabled": False},
        "generator": {
            "kind": "relational",
            "tables": {
                "islands": {"source": paths["islands"], "primary_key": "island_id"},
                "colonies": {"source": paths["colonies"], "primary_key": "colony_id"},
                "penguins": {"source": paths["penguins"]},
            },
            "relationships": [
                {"parent": "islands", "child": "colonies", "foreign_key": "island_id"},
                {"parent": "colonies", "child": "penguins", "foreign_key": "colony_id"},
            ],
        },
        **extra,
    }
