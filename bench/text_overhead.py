"""Overhead: platform tokens/s vs bare batched model.generate over the same batches (same
model, dtype, prompts sorted by length, batch size and max tokens). Goal >= 0.95.

    .venv/bin/python bench/text_overhead.py [--prompts 32] [--tokens 32] [--batch 16]
"""

from __future__ import annotations

import argparse

from _common import run_platform
from _text import bare_model, generate_bare, spec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    job = spec(args.prompts, args.tokens, args.batch)
    model, tokenizer, prompts = bare_model(job)
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    ordered = [p for _, p in sorted(zip(lengths, prompts, strict=True), key=lambda x: -x[0])]
    generate_bare(model, tokenizer, ordered[:2], 2, 4)  # warm up
    bare_tokens, bare_seconds = generate_bare(model, tokenizer, ordered, args.batch, args.tokens)
    del model
    result = run_platform(job)
    from synthfactory.dataset import open_dataset

    platform_tokens = open_dataset(job.output).manifest.stats["completion_tokens"]
    bare_rate = bare_tokens / bare_seconds
    platform_rate = platform_tokens / result["generate_seconds"]
    print(f"{args.prompts} prompts x {args.tokens} new tokens, batch {args.batch}")
    print(
        f"bare model.generate: {bare_tokens} tokens in {bare_seconds:.1f}s = "
        f"{bare_rate:.1f} tokens/s"
    )
    print(
        f"platform:            {platform_tokens:.0f} tokens in "
        f"{result['generate_seconds']:.1f}s = {platform_rate:.1f} tokens/s"
    )
    print(f"ratio: {platform_rate / bare_rate:.3f}  (goal >= 0.95)")


if __name__ == "__main__":
    main()
