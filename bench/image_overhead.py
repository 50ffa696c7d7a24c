"""Image overhead: platform images/s (Prefect + Ray actor, per-image seeds, PNG encoding,
pHash, Parquet) vs calling the bare pipeline with the same batch size and steps. Goal >= 0.95.
Also batching: images/s at the default batch size vs batch 1, on the bare pipeline.

    .venv/bin/python bench/image_overhead.py [--model builtin:digits] [--images 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _common import run_platform
from synthfactory.spec import load_spec


def bare(model: str, images: int, batch: int, steps: int) -> float:
    import torch
    from diffusers import DiffusionPipeline

    from synthfactory_workers.image.generator import resolve_model

    pipe = DiffusionPipeline.from_pretrained(resolve_model(model))
    pipe.set_progress_bar_config(disable=True)
    pipe(batch_size=1, num_inference_steps=2)  # warm up
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
    args = parser.parse_args()
    bare_rate = bare(args.model, args.images, args.batch, args.steps)
    batch1_rate = bare(args.model, max(8, args.images // 4), 1, args.steps)
    spec = load_spec(
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
            "resources": {"actors": 1, "num_cpus": 1, "math_threads": 2, "batch_size": args.batch},
        }
    )
    result = run_platform(spec)
    platform_rate = result["rows"] / result["generate_seconds"]
    print(f"{args.images} images, {args.steps} steps, batch {args.batch}, model {args.model}")
    print(f"bare pipeline:  {bare_rate:.2f} images/s (batch 1: {batch1_rate:.2f} images/s)")
    print(f"platform:       {platform_rate:.2f} images/s")
    print(f"overhead ratio: {platform_rate / bare_rate:.3f}  (goal >= 0.95)")
    print(
        f"batching:       {bare_rate / batch1_rate:.2f}x images/s at batch {args.batch} vs batch 1"
    )


if __name__ == "__main__":
    main()
