"""Differentially private Gaussian copula: quality.overall (and its two halves) at
epsilon in {0.5, 1, 3, 10, inf} on the penguins table, mean and spread over fit seeds
(the DP noise is seeded from fit_seed here, for a repeatable benchmark; a production run
uses privacy.noise: secret). Also on penguins resampled to 20,000 rows, to show how the
noise shrinks with the table's size (a stand-in for a bigger table: its rows repeat, so
it is not a privacy claim about penguins).

    .venv/bin/python bench/dp_copula.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from synthfactory.column_detection import detect_types
from synthfactory.metrics.tabular.quality import quality_report
from synthfactory.spec.generators.tabular import PrivacyConfig
from synthfactory_workers.tabular.copula import GaussianCopula

ROOT = Path(__file__).resolve().parents[1]
EPSILONS = (0.5, 1.0, 3.0, 10.0, None)
#: public bounds and values (field-guide knowledge), never the table's own min/max
BOUNDS = {
    "bill_length_mm": (30.0, 60.0),
    "bill_depth_mm": (13.0, 22.0),
    "flipper_length_mm": (170.0, 235.0),
    "body_mass_g": (2500.0, 6500.0),
    "year": (2007.0, 2009.0),
}
CATEGORIES = {
    "species": ["Adelie", "Chinstrap", "Gentoo"],
    "island": ["Biscoe", "Dream", "Torgersen"],
    "sex": ["female", "male"],
}


def score(real: pd.DataFrame, epsilon: float | None, seed: int) -> dict[str, float]:
    types = detect_types(real)
    config = (
        PrivacyConfig(epsilon=epsilon, bounds=BOUNDS, categories=CATEGORIES, noise="fit_seed")
        if epsilon is not None
        else None
    )
    model = GaussianCopula(seed=seed, privacy=config, bounds=BOUNDS)
    model.fit(real, types)
    synthetic = model.sample(min(len(real), 5000), seed)
    sample = real.sample(min(len(real), 5000), random_state=seed)
    report = quality_report(sample, synthetic)
    return {
        "overall": report["overall"],
        "shapes": report["column_shapes"],
        "pairs": report["column_pair_trends"],
    }


def table(real: pd.DataFrame, label: str, seeds: int) -> None:
    print(f"\n{label}: {len(real):,} rows, {seeds} fit seeds (mean ± sd)")
    print(f"{'epsilon':>8} | {'quality.overall':>15} | {'column_shapes':>13} | {'pair_trends':>11}")
    print(f"{'-' * 8}-+-{'-' * 15}-+-{'-' * 13}-+-{'-' * 11}")
    for epsilon in EPSILONS:
        runs = [score(real, epsilon, seed) for seed in range(seeds)]

        def cell(name: str, width: int, runs: list[dict[str, float]] = runs) -> str:
            values = np.array([r[name] for r in runs])
            return f"{values.mean():.3f} ± {values.std():.3f}".rjust(width)

        shown = "inf" if epsilon is None else f"{epsilon:g}"
        print(f"{shown:>8} | {cell('overall', 15)} | {cell('shapes', 13)} | {cell('pairs', 11)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    penguins = pd.read_csv(ROOT / "examples" / "data" / "penguins.csv")
    t0 = time.perf_counter()
    table(penguins, "penguins", args.seeds)
    bigger = penguins.sample(20_000, replace=True, random_state=0).reset_index(drop=True)
    table(bigger, "penguins resampled", max(2, args.seeds // 2))
    print(f"\n{time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
