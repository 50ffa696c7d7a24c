"""The cost of running a pipeline column on its own model pool: the same 3-column pipeline
(thing -> a -> b -> c, SmolLM2-135M everywhere) as two platform jobs with the same
requests, seeds, batches and threads:

- in-actor: one shard actor (1 CPU, 1 thread) runs every column;
- pooled: column c names a model of its own (``models: {pool: builtin:smollm2}``), so it
  runs on a second actor pool (1 actor, 1 CPU, 1 thread); the shard actor runs a and b and
  waits on the pool for c.

One shard actor on both sides, so no two shards overlap: the ratio (in-actor generation
seconds / pooled) is what the hop to another pool costs (chunks through Ray, the journal
keys asked of the pool), not a gain from pipelining. The texts of both jobs are compared
(they must be the same). Medians of interleaved rounds.

    PYTHONPATH=platform:flows:workers .venv/bin/python bench/model_pools.py \\
        [--rows 32] [--shard-rows 8] [--tokens 24] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from typing import Any

from _common import run_platform

STEPS = (
    ("a", "Name one {{ thing }}. Answer with the name only."),
    ("b", "Describe {{ a }} in one sentence."),
    ("c", "Write a short question about this: {{ b }}"),
)
THINGS = ["fruit", "tool", "bird", "city", "river", "game", "song", "tree"]


def job(name: str, rows: int, shard_rows: int, tokens: int, pooled: bool) -> dict[str, Any]:
    columns: list[dict[str, Any]] = [{"kind": "choice", "name": "thing", "choices": THINGS}]
    for column, template in STEPS:
        columns.append({"kind": "llm_text", "name": column, "template": template})
    resources: dict[str, Any] = {
        "actors": 1,
        "num_cpus": 1,
        "batch_size": shard_rows,
        "math_threads": 1,
    }
    generator: dict[str, Any] = {
        "kind": "llm",
        "model": "builtin:smollm2",
        "columns": columns,
        "sampling": {"max_new_tokens": tokens, "temperature": 0.8},
        "dedup": {"exact": False, "near": False},
        "filters": {"min_chars": 0},
        "max_attempts_per_row": 1,
    }
    if pooled:
        generator["models"] = {"pool": {"model": "builtin:smollm2"}}
        columns[-1]["model"] = "pool"
        resources["models"] = {"pool": {"actors": 1, "num_cpus": 1, "math_threads": 1}}
    return {
        "name": name,
        "modality": "text",
        "rows": rows,
        "shard_rows": shard_rows,
        "seed": 5,
        "output": tempfile.mkdtemp(prefix=f"sf-bench-{name}-"),
        "generator": generator,
        "resources": resources,
        "metrics": {"enabled": False},
        "top_up_rounds": 0,
    }


def texts(output: str) -> list[tuple[str, str, str]]:
    from synthfactory.dataset import open_dataset

    rows = open_dataset(output).to_arrow().to_pylist()
    return sorted((str(r["row_id"]), str(r["b"]), str(r["c"])) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--shard-rows", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ratios: list[float] = []
    same = True
    for round_ in range(args.rounds):
        inside = job("in-actor", args.rows, args.shard_rows, args.tokens, pooled=False)
        pooled = job("pooled", args.rows, args.shard_rows, args.tokens, pooled=True)
        a = run_platform(inside)
        b = run_platform(pooled)
        same = same and texts(inside["output"]) == texts(pooled["output"])
        ratios.append(a["generate_seconds"] / b["generate_seconds"])
        print(
            f"round {round_ + 1}: in-actor {a['generate_seconds']:.1f}s, pooled "
            f"{b['generate_seconds']:.1f}s generating (start-up {a['startup_seconds']:.1f}s "
            f"vs {b['startup_seconds']:.1f}s)"
        )
    print(
        f"{args.rows} rows in shards of {args.shard_rows} x 3 columns x {args.tokens} tokens, "
        "1 thread per actor"
    )
    print(f"in-actor / pooled, generation: {statistics.median(ratios):.3f} (median)")
    print(f"same texts on both sides: {same}")


if __name__ == "__main__":
    main()
