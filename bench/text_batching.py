"""Batching: platform tokens/s (Prefect + Ray actor, batched, seeded per row) vs a
one-prompt-at-a-time transformers loop on the same model, prompts and max tokens.
Goal >= 5x.

    .venv/bin/python bench/text_batching.py [--prompts 16] [--tokens 32] [--batch 16]
"""

from __future__ import annotations

import argparse

from _common import run_platform
from _text import bare_model, generate_bare, spec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    job = spec(args.prompts, args.tokens, args.batch)
    model, tokenizer, prompts = bare_model(job)
    generate_bare(model, tokenizer, prompts[:1], 1, 4)  # warm up
    loop_tokens, loop_seconds = generate_bare(model, tokenizer, prompts, 1, args.tokens)
    del model
    result = run_platform(job)
    from synthfactory.dataset import open_dataset

    platform_tokens = open_dataset(job.output).manifest.stats["completion_tokens"]
    loop_rate = loop_tokens / loop_seconds
    platform_rate = platform_tokens / result["generate_seconds"]
    print(f"{args.prompts} prompts x {args.tokens} new tokens, batch {args.batch}")
    print(
        f"one prompt at a time: {loop_tokens} tokens in {loop_seconds:.1f}s = "
        f"{loop_rate:.1f} tokens/s"
    )
    print(
        f"platform:             {platform_tokens:.0f} tokens in "
        f"{result['generate_seconds']:.1f}s = {platform_rate:.1f} tokens/s"
    )
    print(f"batching speed-up: {platform_rate / loop_rate:.2f}x  (goal >= 5x)")


if __name__ == "__main__":
    main()
