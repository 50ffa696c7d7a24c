"""Metrics over every row: shard-parallel summaries on Ray vs the whole table in one process.

Baseline: read every row into one process and compute column shapes, pair trends, the
exact-copy rate and group shares with the whole-table definitions (``quality_report``,
``exact_copy_rate``, ``representation``). Platform: the same numbers from per-shard summaries
computed by Ray tasks and merged (``TabularSummary``). Both are checked to agree.
Ratio = baseline seconds / platform seconds (higher is better; the machine has 2 cores).

    .venv/bin/python bench/metrics_scaling.py [--rows N] [--shard-rows N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import run_platform
from synthfactory.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--shard-rows", type=int, default=250_000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="sf-bench-metrics-")
    spec = load_spec(
        ROOT / "examples/tabular_penguins.yaml",
        output=f"{tmp}/out",
        rows=args.rows,
        shard_rows=args.shard_rows,
        metrics={"enabled": False, "sensitive_columns": ["sex"]},
        resources={"actors": 2, "num_cpus": 1, "math_threads": 1},
    )
    run_platform(spec)

    import pandas as pd

    from synthfactory.dataset import open_dataset
    from synthfactory.metrics.privacy.closeness import exact_copy_rate
    from synthfactory.metrics.sampling import quotas
    from synthfactory.metrics.tabular.bias import representation
    from synthfactory.metrics.tabular.quality import quality_report
    from synthfactory.metrics.tabular.sharded import TabularSummary
    from synthfactory_flows.evaluate import _summaries, read_synthetic
    from synthfactory_workers.ray_runtime import connect

    ds = open_dataset(f"{tmp}/out")
    entries = ds.manifest.shards
    real = pd.read_csv(ROOT / "examples/data/penguins.csv")
    config = spec.metrics

    t0 = time.perf_counter()
    synthetic = read_synthetic(ds.store, entries, args.rows, 0)
    whole = quality_report(real, synthetic)
    copies = exact_copy_rate(real, synthetic)
    groups = representation(real, synthetic, ["sex"])
    baseline = time.perf_counter() - t0
    del synthetic

    connect(None)
    t0 = time.perf_counter()
    summary = TabularSummary.plan(
        real,
        [f["name"] for f in ds.manifest.data_schema.fields],
        config,
        quotas({e.index: e.rows for e in entries}, config.max_rows),
    )
    merged = _summaries(spec, summary, ds.uri, entries)
    real_summary = summary.partial(real, -1)
    sharded = summary.quality(real_summary, merged)
    sharded_copies = merged["copies"] / merged["rows"]
    sharded_groups = summary.representation(real_summary, merged)
    platform = time.perf_counter() - t0

    assert abs(sharded["overall"] - whole["overall"]) < 1e-9, (sharded["overall"], whole["overall"])
    assert abs(sharded_copies - copies) < 1e-12
    assert abs(sharded_groups["sex"]["max_share_change"] - groups["sex"]["max_share_change"]) < 1e-9
    print(
        f"{args.rows:,} rows in {len(entries)} shards: whole table in one process "
        f"{baseline:.1f}s, shard summaries on Ray {platform:.1f}s = {baseline / platform:.2f}x "
        f"(same overall score {sharded['overall']:.6f})"
    )


if __name__ == "__main__":
    main()
