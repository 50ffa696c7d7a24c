"""Batching: the platform's backend at batch 16 vs the same backend one prompt at a time
(same sampler, prompts, seeds and threads), in this process, then the whole platform at
batch 16 for reference. Goal >= 5x. Medians of interleaved rounds.

    .venv/bin/python bench/text_batching.py [--prompts 16] [--tokens 32] [--batch 16] [--rounds 3]
"""

from __future__ import annotations

import argparse

from _common import run_platform
from _text import bare_backend, generate_backend, median, spec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from synthfactory.dataset import open_dataset

    job = spec(args.prompts, args.tokens, args.batch)
    backend, requests = bare_backend(job)
    generate_backend(backend, requests[:2], 2)  # warm up
    batched, single = [], []
    for round_ in range(args.rounds):
        tokens, seconds = generate_backend(backend, requests, args.batch)
        batched.append(tokens / seconds)
        tokens, seconds = generate_backend(backend, requests, 1)
        single.append(tokens / seconds)
        print(
            f"round {round_ + 1}: batch {args.batch} {batched[-1]:.1f}, batch 1 "
            f"{single[-1]:.1f} tokens/s"
        )
    result = run_platform(job)
    platform = open_dataset(job.output).manifest.stats["completion_tokens"]
    print(f"{args.prompts} prompts x {args.tokens} new tokens")
    print(
        f"batching speed-up (same sampler): {median(batched) / median(single):.2f}x"
        "  (goal >= 5x; medians)"
    )
    print(f"platform at batch {args.batch}: {platform / result['generate_seconds']:.1f} tokens/s")


if __name__ == "__main__":
    main()
