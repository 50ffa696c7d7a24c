"""Scale-out: the same job with 2 actors vs 1 on this machine, each actor limited to one
math-library thread. Goal >= 1.6x (Ray and Prefect share the cores).

Each new actor's first shard runs ~0.3 s slower (a fresh process faulting in memory), a
fixed cost per actor: at 1M rows it holds the ratio near 1.3x, at 5M (default) it fades.

    .venv/bin/python bench/scale_out.py [SPEC] [--rows N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import run_platform
from synthfactory.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec", nargs="?", default=str(ROOT / "examples/tabular_penguins.yaml"))
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--shard-rows", type=int, default=250_000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="sf-bench-")
    results = {}
    for actors in (1, 2):
        spec = load_spec(
            args.spec,
            output=f"{tmp}/a{actors}",
            rows=args.rows,
            shard_rows=args.shard_rows,
            resources={"actors": actors, "num_cpus": 1, "math_threads": 1},
        )
        results[actors] = run_platform(spec)
        seconds = results[actors]["generate_seconds"]
        print(f"{actors} actor(s): {seconds:.2f}s, {args.rows / seconds:,.0f} rows/s")
    speedup = results[1]["generate_seconds"] / results[2]["generate_seconds"]
    print(f"scale-out 2 vs 1 actors: {speedup:.2f}x  (goal >= 1.6x)")


if __name__ == "__main__":
    main()
