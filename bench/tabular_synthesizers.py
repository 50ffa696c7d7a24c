"""Tabular synthesizers side by side on the same table (the example penguins): fit seconds,
sample rows/s in one process (the baseline: the same generator and shard writer, no Ray,
no Prefect) vs across the Ray pool, and the quality scores of the metrics module.

Goal: pool rows/s >= 0.9 x actors x in-process rows/s on fully parallel sampling. The
machine's ceiling is measured beside it: the same sampling in as many plain processes as
actors (no Ray, no Prefect), so a shortfall can be told apart as the machine's (two
processes on two cores with shared caches) or the platform's (pool/ceiling below 1).

    .venv/bin/python bench/tabular_synthesizers.py [--rows N] [--actors A] [--epochs E]
        [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from _common import run_direct, run_platform, run_processes
from synthfactory.metrics.tabular.quality import quality_report
from synthfactory.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "examples" / "data" / "penguins.csv"
#: rows sampled per run, so that each run takes seconds, not fixed costs
ROWS = {"gaussian_copula": 4_000_000, "ctgan": 1_600_000, "tvae": 2_000_000}


def options(kind: str, epochs: int) -> dict[str, Any]:
    if kind == "ctgan":
        return {"epochs": epochs, "batch_size": 340, "pac": 10}
    if kind == "tvae":
        return {"epochs": epochs, "batch_size": 340}
    return {}


def fit_seconds(kind: str, epochs: int, artifacts: str) -> float:
    from synthfactory.storage import LocalStore
    from synthfactory_workers.contract import generator_class

    spec = load_spec(
        {
            "name": "fit",
            "modality": "tabular",
            "rows": 1,
            "output": f"{artifacts}-fit",
            "generator": {"kind": kind, "source": str(SOURCE), **options(kind, epochs)},
        }
    )
    t0 = time.perf_counter()
    generator_class(spec).prepare(spec, LocalStore(artifacts))
    return time.perf_counter() - t0


def measure(base: dict[str, Any], out: str, actors: int) -> dict[str, float]:
    """One round: rows/s in one process, in ``actors`` plain processes, and on the pool."""
    one = {"actors": 1, "num_cpus": 1, "math_threads": 1}
    direct = run_direct(
        load_spec({**base, "output": f"{out}-direct"}, resources=one), f"{out}-direct"
    )
    ceiling = run_processes(
        load_spec({**base, "output": f"{out}-processes"}, resources=one), f"{out}-processes", actors
    )
    pool = run_platform(
        load_spec(
            {**base, "output": f"{out}-pool"},
            resources={"actors": actors, "num_cpus": 1, "math_threads": 1},
        )
    )
    return {
        k: v["rows"] / v["generate_seconds"]
        for k, v in (("direct", direct), ("processes", ceiling), ("pool", pool))
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=None, help="rows per run (all kinds)")
    parser.add_argument(
        "--shard-rows", type=int, default=None, help="default: the generator's default"
    )
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--kinds", default="gaussian_copula,ctgan,tvae")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; medians reported")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="sf-bench-tabular-")
    real = pd.read_csv(SOURCE)
    lines = []
    for kind in args.kinds.split(","):
        artifacts = f"{tmp}/artifacts-{kind}"  # every run below reuses this one fit
        fit = fit_seconds(kind, args.epochs, artifacts)
        rows = args.rows or ROWS[kind]
        base = {
            "name": f"bench-{kind.replace('_', '-')}",
            "modality": "tabular",
            "rows": rows,
            **({"shard_rows": args.shard_rows} if args.shard_rows else {}),
            "seed": 1,
            "generator": {"kind": kind, "source": str(SOURCE), **options(kind, args.epochs)},
            "metrics": {"enabled": False},
            "storage": {"artifacts": artifacts},
        }
        shard_rows = load_spec({**base, "output": tmp}).shard_rows
        rates: dict[str, list[float]] = {"direct": [], "processes": [], "pool": []}
        for r in range(args.repeats):  # interleaved, so slow spells of the host hit all three
            for name, value in measure(base, f"{tmp}/{kind}-{r}", args.actors).items():
                rates[name].append(value)
        direct_rate, ceiling_rate, pool_rate = (
            statistics.median(rates[k]) for k in ("direct", "processes", "pool")
        )
        rounds = ", ".join(
            f"{p / d:.2f}" for p, d in zip(rates["pool"], rates["direct"], strict=True)
        )
        synthetic = pd.read_parquet(f"{tmp}/{kind}-0-direct/direct").head(20_000)
        quality = quality_report(real, synthetic)
        ratio = pool_rate / direct_rate
        lines.append(
            f"{kind:16s} fit {fit:6.2f}s | "
            f"{rows:,} rows in {shard_rows:,}-row shards: 1 process {direct_rate:>10,.0f} rows/s | "
            f"{args.actors} actors {pool_rate:>10,.0f} rows/s = {ratio:.2f}x [rounds: {rounds}] "
            f"(goal >= {0.9 * args.actors:.1f}x; {args.actors} plain processes "
            f"{ceiling_rate / direct_rate:.2f}x, pool/ceiling {pool_rate / ceiling_rate:.2f}) | "
            f"quality {quality['overall']:.3f} "
            f"(shapes {quality['column_shapes']:.3f}, pairs {quality['column_pair_trends']:.3f})"
        )
        print(lines[-1], flush=True)
    print(f"\n{len(real)}-row penguins table; epochs {args.epochs} for ctgan/tvae")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
