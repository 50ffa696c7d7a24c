"""Overhead: the platform (Prefect + Ray actor + Parquet) vs its own transformers backend
called bare in this process: same model, dtype, sampler, prompts, seeds, batch size and
thread count. Goal >= 0.95. A second line, not overhead: the backend's sampler vs HF
``model.generate``'s own sampling over the same batches (the sampler gain).
Medians of interleaved rounds (each round: bare, then a fresh platform job).

    .venv/bin/python bench/text_overhead.py [--prompts 32] [--tokens 32] [--batch 16] [--rounds 3]
"""

from __future__ import annotations

import argparse

from _common import run_platform
from _text import bare_backend, generate_backend, generate_bare, median, spec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from synthfactory.dataset import open_dataset

    job = spec(args.prompts, args.tokens, args.batch)
    backend, requests = bare_backend(job)
    generate_backend(backend, requests[:2], 2)  # warm up
    tokenizer = backend.tokenizer
    prompts = [backend._prompt(r) for r in requests]
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    ordered = [p for _, p in sorted(zip(lengths, prompts, strict=True), key=lambda x: -x[0])]
    bare, platform, hf = [], [], []
    for round_ in range(args.rounds):
        tokens, seconds = generate_backend(backend, requests, args.batch)
        bare.append(tokens / seconds)
        tokens, seconds = generate_bare(backend.model, tokenizer, ordered, args.batch, args.tokens)
        hf.append(tokens / seconds)
        fresh = spec(args.prompts, args.tokens, args.batch)  # a new output: no resume
        result = run_platform(fresh)
        done = open_dataset(fresh.output).manifest.stats["completion_tokens"]
        platform.append(done / result["generate_seconds"])
        print(
            f"round {round_ + 1}: backend bare {bare[-1]:.1f}, platform {platform[-1]:.1f}, "
            f"HF generate {hf[-1]:.1f} tokens/s"
        )
    print(
        f"{args.prompts} prompts x {args.tokens} new tokens, batch {args.batch}, "
        f"{job.resources.math_threads} threads"
    )
    print(
        f"overhead: platform / backend bare = {median(platform) / median(bare):.3f}"
        "  (goal >= 0.95; medians)"
    )
    print(f"sampler gain (not overhead): backend / HF generate = {median(bare) / median(hf):.3f}")


if __name__ == "__main__":
    main()
