"""A 3-column text pipeline (thing -> a -> b -> c, each an llm_text column reading the one
before) as one job, against the same three steps run by hand as three jobs, each reading
the previous job's Parquet output as its prompt source: same model (SmolLM2-135M), rows,
templates, sampling, batch size and threads. Ratio = by-hand seconds / pipeline seconds,
both as generation time only and as wall time (the by-hand route also pays three
start-ups). Then the cost per kept row of the shipped instruct-judge example (persona ->
instruction -> response -> judge, keep helpfulness >= 3): generated candidates / kept rows.
Medians of interleaved rounds.

    PYTHONPATH=platform:flows:workers .venv/bin/python bench/text_pipeline.py \\
        [--rows 16] [--tokens 24] [--rounds 2] [--judge-rows 8]
"""

from __future__ import annotations

import argparse
import glob
import statistics
import tempfile
from pathlib import Path
from typing import Any

import yaml

from _common import run_platform

ROOT = Path(__file__).resolve().parents[1]
STEPS = (
    ("a", "Name one {{ thing }}. Answer with the name only.", "thing"),
    ("b", "Describe {{ a }} in one sentence.", "a"),
    ("c", "Write a short question about this: {{ b }}", "b"),
)
THINGS = ["fruit", "tool", "bird", "city", "river", "game", "song", "tree"]


def base(name: str, rows: int, tokens: int, generator: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "modality": "text",
        "rows": rows,
        "shard_rows": rows,
        "seed": 5,
        "output": tempfile.mkdtemp(prefix=f"sf-bench-{name}-"),
        "generator": {
            "kind": "llm",
            "model": "builtin:smollm2",
            "sampling": {"max_new_tokens": tokens, "temperature": 0.8},
            "dedup": {"exact": False, "near": False},
            "filters": {"min_chars": 0},
            "max_attempts_per_row": 1,
            **generator,
        },
        "resources": {"actors": 1, "num_cpus": 2, "batch_size": 16, "math_threads": 2},
        "metrics": {"enabled": False},
        "top_up_rounds": 0,
    }


def pipeline_job(rows: int, tokens: int) -> dict[str, Any]:
    columns: list[dict[str, Any]] = [{"kind": "choice", "name": "thing", "choices": THINGS}]
    columns += [{"kind": "llm_text", "name": n, "template": t} for n, t, _ in STEPS]
    return base("pipeline", rows, tokens, {"columns": columns})


def by_hand(rows: int, tokens: int) -> tuple[float, float]:
    """(generation seconds, wall seconds) of the three jobs, each reading the last one."""
    generate = wall = 0.0
    source: str | None = None
    for n, (name, template, reads) in enumerate(STEPS):
        text = template.replace("{{ " + reads + " }}", "{{ completion }}" if n else "{{ thing }}")
        prompt: dict[str, Any] = {"template": text}
        if source is None:
            prompt["variables"] = {"thing": {"choices": THINGS}}
        else:
            prompt["source"] = source
        job = base(f"step-{name}", rows, tokens, {"prompt": prompt})
        result = run_platform(job)
        generate += result["generate_seconds"]
        wall += result["wall_seconds"]
        source = glob.glob(f"{job['output']}/*/data/*.parquet")[0]
    return generate, wall


def kept_cost(rows: int) -> tuple[float, float, float]:
    from synthfactory.dataset import open_dataset

    spec = yaml.safe_load((ROOT / "examples" / "text_instruct_judge.yaml").read_text())
    spec.update(rows=rows, shard_rows=rows, output=tempfile.mkdtemp(prefix="sf-bench-judge-"))
    spec["gates"] = {}
    spec["top_up_rounds"] = 1  # SmolLM2 keeps few rows: the ratio is what is measured
    run_platform(spec)
    manifest = open_dataset(spec["output"]).manifest
    # manifest stats sum every shard generated, also those that kept no row
    generated = manifest.stats.get("pipeline.generated", 0.0)
    kept = manifest.rows
    return generated, kept, generated / max(kept, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--judge-rows", type=int, default=4)
    args = parser.parse_args()
    gen_ratio, wall_ratio = [], []
    for round_ in range(args.rounds):
        hand_gen, hand_wall = by_hand(args.rows, args.tokens)
        pipe = run_platform(pipeline_job(args.rows, args.tokens))
        gen_ratio.append(hand_gen / pipe["generate_seconds"])
        wall_ratio.append(hand_wall / pipe["wall_seconds"])
        print(
            f"round {round_ + 1}: by hand {hand_gen:.1f}s generating / {hand_wall:.1f}s wall; "
            f"pipeline {pipe['generate_seconds']:.1f}s / {pipe['wall_seconds']:.1f}s"
        )
    print(f"{args.rows} rows x 3 columns x {args.tokens} new tokens, batch 16, 2 threads")
    print(f"by hand / pipeline, generation: {statistics.median(gen_ratio):.2f}x (median)")
    print(f"by hand / pipeline, wall:       {statistics.median(wall_ratio):.2f}x (median)")
    generated, kept, cost = kept_cost(args.judge_rows)
    print(
        f"instruct-judge example: {generated:.0f} generated / {kept} kept = {cost:.2f} per kept row"
    )


if __name__ == "__main__":
    main()
