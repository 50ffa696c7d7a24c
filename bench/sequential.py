"""Sequential synthesis: fit and sample seconds against the number of entities, in one
process (the generator's own prepare and generate, no Ray, no Prefect), on the Grunfeld panel
(examples/data/grunfeld.csv, 11 firms x 20 years) resampled to 100, 1,000 and 10,000 firms
(firms drawn with replacement, given new keys: a stand-in for a bigger panel; its sequences
repeat). Sampling draws as many entities as the source has; quality is
``sequential.overall`` (and two of its parts) of the sample against the source.

    .venv/bin/python bench/sequential.py [--entities 100 1000 10000] [--epochs 128]
        [--batch-size 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import _common  # noqa: F401  (environment defaults)
from synthfactory.metrics.tabular.sequential import sequential_report
from synthfactory.spec import load_spec
from synthfactory.storage import LocalStore
from synthfactory_workers.contract import GeneratorContext, ShardTask, generator_class

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "examples" / "data" / "grunfeld.csv"
SHARD = 5_000  # entities per shard (sampling cost is per entity; shards only cut it up)


def resampled(panel: pd.DataFrame, entities: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    firms = sorted(panel["firm"].unique())
    parts = []
    for i, firm in enumerate(rng.choice(firms, entities, replace=True)):
        part = panel[panel["firm"] == firm].copy()
        part["firm"] = f"F{i:05d}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def measure(df: pd.DataFrame, folder: Path, epochs: int, batch_size: int) -> dict[str, Any]:
    source = folder / "panel.csv"
    df.to_csv(source, index=False)
    entities = int(df["firm"].nunique())
    job = load_spec(
        {
            "name": "bench",
            "modality": "tabular",
            "rows": entities,
            "output": str(folder / "out"),
            "generator": {
                "kind": "sequential",
                "source": str(source),
                "sequence_key": "firm",
                "sequence_index": "year",
                "epochs": epochs,
                "batch_size": batch_size,
            },
        }
    )
    cls = generator_class(job)
    artifacts = LocalStore(folder / "artifacts")
    t0 = time.perf_counter()
    prepared = cls.prepare(job, artifacts)
    fit = time.perf_counter() - t0
    generator = cls(job, GeneratorContext(artifacts=artifacts, prepared=prepared))
    generator.load()
    t0 = time.perf_counter()
    outs = [
        generator.generate(ShardTask(i, s, min(SHARD, entities - s), 1000 + i))
        for i, s in enumerate(range(0, entities, SHARD))
    ]
    sample = time.perf_counter() - t0
    steps = pd.concat([o.tables["sequences"].to_pandas() for o in outs], ignore_index=True)
    report = sequential_report(df, steps, "firm", "year", [])
    return {
        "entities": entities,
        "steps": len(df),
        "fit": fit,
        "sample": sample,
        "entities_per_second": entities / sample,
        "overall": report["overall"],
        "shapes": report["column_shapes"],
        "lag1": report["lag1_autocorrelation_similarity"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--epochs", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    panel = pd.read_csv(SOURCE)
    print(f"epochs {args.epochs}, batch size {args.batch_size}, one process")
    print("| entities | steps | fit s | sample s | entities/s | overall | shapes | lag-1 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in args.entities:
        with tempfile.TemporaryDirectory() as tmp:
            r = measure(resampled(panel, n), Path(tmp), args.epochs, args.batch_size)
        print(
            f"| {r['entities']:,} | {r['steps']:,} | {r['fit']:.1f} | {r['sample']:.2f} | "
            f"{r['entities_per_second']:,.0f} | {r['overall']:.3f} | {r['shapes']:.3f} | "
            f"{r['lag1']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
