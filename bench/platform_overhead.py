"""Platform overhead: Prefect + Ray + Parquet with one actor vs the same generator called
directly in one process, same rows, same Parquet writer. Goal >= 0.90 excluding start-up.

    .venv/bin/python bench/platform_overhead.py [SPEC] [--rows N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import run_direct, run_platform
from synthfactory.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec", nargs="?", default=str(ROOT / "examples/tabular_penguins.yaml"))
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument(
        "--shard-rows", type=int, default=500_000, help="default: the copula's default"
    )
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="sf-bench-")
    overrides = {
        "rows": args.rows,
        "shard_rows": args.shard_rows,
        "resources": {"actors": 1, "num_cpus": 1, "math_threads": 1},
        "metrics": {"enabled": False},  # measured on their own: bench/metrics_scaling.py
    }
    spec = load_spec(args.spec, output=f"{tmp}/platform", **overrides)
    direct = run_direct(spec, f"{tmp}/direct")
    platform = run_platform(spec)
    gen_ratio = direct["generate_seconds"] / platform["generate_seconds"]
    total_direct = direct["generate_seconds"] + direct["startup_seconds"]
    wall_ratio = total_direct / platform["wall_seconds"]
    print(f"rows: {args.rows:,}  spec: {args.spec}")
    print(
        f"direct:   generate {direct['generate_seconds']:.2f}s "
        f"({args.rows / direct['generate_seconds']:,.0f} rows/s), "
        f"setup {direct['startup_seconds']:.2f}s"
    )
    print(
        f"platform: generate {platform['generate_seconds']:.2f}s "
        f"({args.rows / platform['generate_seconds']:,.0f} rows/s), "
        f"start-up (Prefect+Ray+prepare+actors+commit) {platform['startup_seconds']:.2f}s"
    )
    print(f"ratio excluding start-up: {gen_ratio:.3f}  (goal >= 0.90)")
    print(f"ratio including start-up: {wall_ratio:.3f}")


if __name__ == "__main__":
    main()
