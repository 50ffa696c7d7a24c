"""Gaussian copula throughput: fit seconds and sample rows/s on the example table (and on a
100k-row table resampled from it), in one process.

    .venv/bin/python bench/tabular_copula.py
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from synthfactory.column_detection import detect_types
from synthfactory_workers.tabular.copula import GaussianCopula

ROOT = Path(__file__).resolve().parents[1]


def measure(df: pd.DataFrame, label: str, rows: int = 1_000_000) -> None:
    types = detect_types(df)
    model = GaussianCopula()
    t0 = time.perf_counter()
    model.fit(df, types)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.sample(rows, seed=1)
    sample = time.perf_counter() - t0
    print(
        f"{label}: {len(df):,} rows x {df.shape[1]} columns; fit {fit:.2f}s; "
        f"sample {rows:,} rows in {sample:.2f}s = {rows / sample:,.0f} rows/s"
    )


def main() -> None:
    penguins = pd.read_csv(ROOT / "examples" / "data" / "penguins.csv")
    measure(penguins, "penguins")
    measure(penguins.sample(100_000, replace=True, random_state=0), "penguins x100k")


if __name__ == "__main__":
    main()
