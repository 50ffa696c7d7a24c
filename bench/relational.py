"""Relational synthesis at scale: customers -> accounts -> transactions, a source table set
made in code (customers' region, age and income drive how many accounts they hold; an
account's kind drives how many transactions it has and their amounts). For each size
(child = transaction rows in the source, and about as many generated), a whole platform job
(Prefect, Ray, Parquet) reports fit seconds (prepare: one copula per table), sample seconds
(generation), per-table quality, cardinality shape similarity and referential integrity.
Then one actor vs two at one size.

``--bank N``: the 9-table bank of tests/tabular/bank.py (N districts, ~105 rows each) as the
schema grows in tables and depth, from districts -> clients (the baseline, 2 tables, depth
1) to all 9 tables at depth 4 with two two-parent tables and a lookup table: fit and sample
seconds, each as a ratio to the baseline measured in the same run, integrity, cardinality
and intertable trends.

    PYTHONPATH=platform:flows:workers .venv/bin/python bench/relational.py \\
        [--sizes 10000 100000 1000000] [--actors-size 100000] [--bank 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _common import run_platform

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "tabular"))
import bank  # tests/tabular/bank.py as a plain module

#: the bank's schema as it grows: (tables, depth)
BANK_STEPS: list[tuple[list[str], int]] = [
    (["districts", "clients"], 1),
    (["districts", "clients", "accounts"], 2),
    (["districts", "clients", "accounts", "dispositions", "loans", "orders"], 3),
    (list(bank.PRIMARY_KEYS), 4),
]

TX_PER_CUSTOMER = 10  # ~2 accounts x ~5 transactions


def source_tables(transactions: int, folder: Path, seed: int = 0) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    n = max(10, transactions // TX_PER_CUSTOMER)
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    age = rng.integers(18, 90, n)
    income = np.round(rng.lognormal(10.5 + 0.2 * (region == "north"), 0.5, n), 2)
    customers = pd.DataFrame(
        {"customer_id": np.arange(1, n + 1), "region": region, "age": age, "income": income}
    )
    per_customer = rng.poisson(1 + 2 * (income > np.median(income)))
    owner = np.repeat(customers["customer_id"].to_numpy(), per_customer)
    kind = rng.choice(["checking", "savings", "credit"], len(owner), p=[0.5, 0.3, 0.2])
    accounts = pd.DataFrame(
        {
            "account_id": np.arange(1, len(owner) + 1),
            "customer_id": owner,
            "kind": kind,
            "opened_year": rng.integers(1995, 2026, len(owner)),
        }
    )
    rate = np.where(kind == "checking", 8.0, np.where(kind == "credit", 5.0, 1.0))
    rate *= transactions / max(1.0, float(rate.sum()))
    per_account = rng.poisson(rate)
    account = np.repeat(accounts["account_id"].to_numpy(), per_account)
    kinds = np.repeat(kind, per_account)
    amount = np.round(rng.lognormal(np.where(kinds == "savings", 6.0, 3.5), 1.0), 2)
    tx = pd.DataFrame(
        {
            "account_id": account,
            "amount": amount,
            "channel": rng.choice(["card", "online", "branch"], len(account), p=[0.6, 0.3, 0.1]),
        }
    )
    paths = {}
    for name, frame in {"customers": customers, "accounts": accounts, "transactions": tx}.items():
        paths[name] = str(folder / f"{name}.parquet")
        frame.to_parquet(paths[name], index=False)
    return paths


def job(paths: dict[str, str], customers: int, actors: int, metrics: bool) -> dict[str, Any]:
    return {
        "name": "bench-relational",
        "modality": "tabular",
        "rows": customers,
        "shard_rows": max(1000, customers // 8),
        "seed": 1,
        "output": tempfile.mkdtemp(prefix="sf-bench-rel-"),
        "generator": {
            "kind": "relational",
            "tables": {
                "customers": {"source": paths["customers"], "primary_key": "customer_id"},
                "accounts": {"source": paths["accounts"], "primary_key": "account_id"},
                "transactions": {"source": paths["transactions"]},
            },
            "relationships": [
                {"parent": "customers", "child": "accounts", "foreign_key": "customer_id"},
                {"parent": "accounts", "child": "transactions", "foreign_key": "account_id"},
            ],
        },
        "resources": {"actors": actors, "num_cpus": 1, "math_threads": 1},
        "metrics": {"enabled": metrics},
    }


def report(output: str) -> dict[str, Any]:
    from synthfactory.dataset import list_versions, open_dataset
    from synthfactory.storage import open_store

    (version,) = list_versions(open_store(output))
    ds = open_dataset(version.uri)
    metrics = (
        json.loads(ds.store.get_text("metrics.json")) if ds.store.exists("metrics.json") else {}
    )
    return {"manifest": ds.manifest, "metrics": metrics}


def bank_job(paths: dict[str, str], tables: list[str], districts: int) -> dict[str, Any]:
    generator = bank.bank_generator(paths)
    generator["tables"] = {t: v for t, v in generator["tables"].items() if t in tables}
    generator["relationships"] = [
        r for r in generator["relationships"] if r["parent"] in tables and r["child"] in tables
    ]
    spec = bank.bank_spec(paths, tempfile.mkdtemp(prefix="sf-bench-bank-"))
    return {
        **spec,
        "rows": districts,
        "shard_rows": max(10, districts // 4),
        "generator": generator,
        "resources": {"actors": 1, "num_cpus": 1, "math_threads": 1},
        "metrics": {"enabled": True, "max_rows": 20_000},
    }


def bench_bank(districts: int) -> None:
    """Fit and sample seconds as the bank's schema grows (see the module docstring)."""
    folder = Path(tempfile.mkdtemp(prefix="sf-bench-bank-src-"))
    source = bank.bank_tables(districts=districts)
    paths = bank.write_bank(folder, source)
    print(f"bank: {districts} districts, {sum(len(t) for t in source.values()):,} source rows")
    run_platform(bank_job(paths, BANK_STEPS[0][0], districts))  # warm-up (imports), not timed
    base: dict[str, float] = {}
    for tables, depth in BANK_STEPS:
        spec = bank_job(paths, tables, districts)
        t0 = time.perf_counter()
        result = run_platform(spec)
        got = report(spec["output"])
        fit = float(got["manifest"].timings.get("prepare_seconds", 0))
        sample = result["generate_seconds"]
        base = base or {"fit": fit, "sample": sample}
        rel = got["metrics"].get("relational", got["metrics"])
        links = [v for c in rel.get("relationships", {}).values() for v in c.values()]
        rows = sum(t.rows for t in got["manifest"].tables.values())
        print(
            f"  {len(tables)} tables, depth {depth}: fit {fit:.1f}s ({fit / base['fit']:.2f}x), "
            f"sample {sample:.1f}s ({sample / base['sample']:.2f}x), {rows:,} rows, "
            f"job {time.perf_counter() - t0:.0f}s; integrity "
            f"{min(v['referential_integrity'] for v in links):.3f} (min), cardinality "
            f"{rel['quality'].get('cardinality') or float('nan'):.3f}, intertable trends "
            f"{rel['quality'].get('intertable_trends') or float('nan'):.3f}, quality "
            f"{rel['quality'].get('overall') or float('nan'):.3f}"
        )
    print("  (ratios: against 2 tables at depth 1, the baseline, measured in this run)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--actors-size", type=int, default=100_000)
    parser.add_argument("--bank", type=int, default=0, help="districts: run the bank bench")
    args = parser.parse_args()
    if args.bank:
        bench_bank(args.bank)
        return
    for size in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix="sf-bench-rel-src-"))
        paths = source_tables(size, folder)
        customers = len(pd.read_parquet(paths["customers"]))
        spec = job(paths, customers, actors=1, metrics=True)
        result = run_platform(spec)
        got = report(spec["output"])
        timings = got["manifest"].timings
        tables = {name: t.rows for name, t in got["manifest"].tables.items()}
        rel = got["metrics"].get("relational", got["metrics"])
        print(
            f"{size:>9,} source tx: fit {float(timings.get('prepare_seconds', 0)):.1f}s, "
            f"sample {result['generate_seconds']:.1f}s, rows {tables}"
        )
        print("   metrics:", json.dumps(rel, default=str)[:600])
    folder = Path(tempfile.mkdtemp(prefix="sf-bench-rel-src-"))
    paths = source_tables(args.actors_size, folder)
    customers = len(pd.read_parquet(paths["customers"]))
    rates = {}
    for actors in (1, 2):
        result = run_platform(job(paths, customers, actors=actors, metrics=False))
        rates[actors] = result["generate_seconds"]
        print(f"{actors} actor(s), {args.actors_size:,} tx: sample {rates[actors]:.1f}s")
    print(f"two actors vs one: {rates[1] / rates[2]:.2f}x")


if __name__ == "__main__":
    main()
