"""Tabular synthesizers side by side on the same table (the example penguins): fit seconds,
sample rows/s in one process (the baseline: the same generator and shard writer, no Ray,
no Prefect) vs across the Ray pool, and the quality scores of the metrics module.

Goal: pool rows/s >= 0.9 x actors x in-process rows/s on fully parallel sampling (the
machine's cores are shared with Ray's and Prefect's own processes, so 2 actors on a
2-core machine understate it).

    .venv/bin/python bench/tabular_synthesizers.py [--rows N] [--actors A] [--epochs E]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from _common import run_direct, run_platform
from synthfactory.metrics.tabular_quality import quality_report
from synthfactory.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "examples" / "data" / "penguins.csv"
#: rows sampled per run, so that each run takes seconds, not fixed costs
ROWS = {"gaussian_copula": 4_000_000, "ctgan": 1_000_000, "tvae": 2_000_000}


def options(kind: str, epochs: int) -> dict[str, Any]:
    if kind == "ctgan":
        return {"epochs": epochs, "batch_size": 340, "pac": 10}
    if kind == "tvae":
        return {"epochs": epochs, "batch_size": 340}
    return {}


def fit_seconds(kind: str, epochs: int, tmp: str) -> float:
    from synthfactory.storage import LocalStore
    from synthfactory_workers.registry import generator_class

    spec = load_spec(
        {
            "name": "fit",
            "modality": "tabular",
            "rows": 1,
            "output": f"{tmp}/fit-{kind}",
            "generator": {"kind": kind, "source": str(SOURCE), **options(kind, epochs)},
        }
    )
    t0 = time.perf_counter()
    generator_class(spec).prepare(spec, LocalStore(f"{tmp}/fit-{kind}/_artifacts"))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=None, help="rows per run (all kinds)")
    parser.add_argument("--shard-rows", type=int, default=100_000)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--kinds", default="gaussian_copula,ctgan,tvae")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="sf-bench-tabular-")
    real = pd.read_csv(SOURCE)
    lines = []
    for kind in args.kinds.split(","):
        fit = fit_seconds(kind, args.epochs, tmp)
        rows = args.rows or ROWS[kind]
        base = {
            "name": f"bench-{kind.replace('_', '-')}",
            "modality": "tabular",
            "rows": rows,
            "shard_rows": args.shard_rows,
            "seed": 1,
            "generator": {"kind": kind, "source": str(SOURCE), **options(kind, args.epochs)},
            "metrics": {"enabled": False},
        }
        one = load_spec(
            {**base, "output": f"{tmp}/{kind}-direct"},
            resources={"actors": 1, "num_cpus": 1, "math_threads": 1},
        )
        direct = run_direct(one, f"{tmp}/{kind}-direct")
        pool_spec = load_spec(
            {**base, "output": f"{tmp}/{kind}-pool"},
            resources={"actors": args.actors, "num_cpus": 1, "math_threads": 1},
        )
        pool = run_platform(pool_spec)
        direct_rate = direct["rows"] / direct["generate_seconds"]
        pool_rate = pool["rows"] / pool["generate_seconds"]
        synthetic = pd.read_parquet(f"{tmp}/{kind}-direct/direct").head(20_000)
        quality = quality_report(real, synthetic)
        ratio = pool_rate / direct_rate
        lines.append(
            f"{kind:16s} fit {fit:6.2f}s | "
            f"{rows:,} rows: 1 process {direct_rate:>10,.0f} rows/s | "
            f"{args.actors} actors {pool_rate:>10,.0f} rows/s = {ratio:.2f}x "
            f"(goal >= {0.9 * args.actors:.1f}x) | quality {quality['overall']:.3f} "
            f"(shapes {quality['column_shapes']:.3f}, pairs {quality['column_pair_trends']:.3f})"
        )
        print(lines[-1], flush=True)
    print(f"\n{len(real)}-row penguins table; epochs {args.epochs} for ctgan/tvae")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
