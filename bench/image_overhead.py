"""Image overhead: platform images/s (Prefect + Ray actor, per-image seeds, PNG encoding,
pHash, Parquet) vs calling the bare pipeline with the same batch size and steps. Goal >= 0.95.
Also batching: images/s at the default batch size vs batch 1, on the bare pipeline.
Medians of interleaved rounds (each round: the bare pipeline, then a fresh platform job),
both sides on the same number of math threads.

    .venv/bin/python bench/image_overhead.py [--model builtin:digits] [--images 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

from _common import run_platform
from synthfactory.spec import load_spec


def load(model: str, threads: int) -> Any:
    import torch
    from diffusers import DiffusionPipeline

    from synthfactory_workers.image.generator import resolve_model

    torch.set_num_threads(threads)
    pipe = DiffusionPipeline.from_pretrained(resolve_model(model))
    pipe.set_progress_bar_config(disable=True)
    pipe(batch_size=1, num_inference_steps=2)  # warm up
    return pipe


def bare(pipe: Any, images: int, batch: int, steps: int) -> float:
    import torch

    started = time.perf_counter()
    for start in range(0, images, batch):
        n = min(batch, images - start)
        gens = [torch.Generator().manual_seed(start + i) for i in range(n)]
        pipe(batch_size=n, num_inference_steps=steps, generator=gens)
    return images / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="builtin:digits")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    pipe = load(args.model, args.threads)
    bare_rates, platform_rates = [], []
    for round_ in range(args.rounds):
        bare_rates.append(bare(pipe, args.images, args.batch, args.steps))
        result = run_platform(spec(args))
        platform_rates.append(result["rows"] / result["generate_seconds"])
        print(
            f"round {round_ + 1}: bare {bare_rates[-1]:.2f}, "
            f"platform {platform_rates[-1]:.2f} images/s"
        )
    batch1_rate = bare(pipe, max(8, args.images // 4), 1, args.steps)
    bare_rate, platform_rate = statistics.median(bare_rates), statistics.median(platform_rates)
    print(f"{args.images} images, {args.steps} steps, batch {args.batch}, model {args.model}")
    print(f"bare pipeline:  {bare_rate:.2f} images/s (batch 1: {batch1_rate:.2f} images/s)")
    print(f"platform:       {platform_rate:.2f} images/s")
    print(f"overhead ratio: {platform_rate / bare_rate:.3f}  (goal >= 0.95; medians)")
    print(
        f"batching:       {bare_rate / batch1_rate:.2f}x images/s at batch {args.batch} vs batch 1"
    )


def spec(args: argparse.Namespace) -> Any:
    return load_spec(
        {
            "name": "bench-images",
            "modality": "image",
            "rows": args.images,
            "shard_rows": args.images,
            "output": tempfile.mkdtemp(prefix="sf-bench-img-"),
            "generator": {
                "kind": "diffusion",
                "model": args.model,
                "steps": args.steps,
                "dedup_max_distance": -1,
                "blank_threshold": 0.0,
            },
            "metrics": {"enabled": False},
            "resources": {
                "actors": 1,
                "num_cpus": 1,
                "math_threads": args.threads,
                "batch_size": args.batch,
            },
        }
    )


if __name__ == "__main__":
    main()
