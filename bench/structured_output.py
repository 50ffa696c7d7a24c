"""Structured output: the transformers backend with constrained decoding (xgrammar) on vs
off, on the shipped SmolLM2 with one JSON Schema (an integer rating 1-5 and a summary of at
most 80 characters); same backend, prompts, seeds, batches and threads, in this process,
rounds interleaved. Baseline: constraints off.

Prints, for each side: rows whose first completion is schema-valid (no retries), completion
tokens/s, row-steps/s (one per token, +1 for an end-of-sequence token: the per-step cost of
the mask) and the time spent in the grammar (bitmask fill + apply + feeding the matchers).
Goal: constrained decoding costs <= 15 % tokens/s. On a shared
machine wall time swings with other jobs' load, so each round's on/off ratio is also
printed (paired: same round, back to back) and per CPU-second of this process (what the
constraint itself costs, less sensitive to the load of other processes).

    .venv/bin/python bench/structured_output.py [--prompts 16] [--tokens 48] [--batch 8]
        [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

from _text import PRODUCTS, median
from synthfactory.spec import load_spec

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "summary": {"type": "string", "maxLength": 80},
    },
    "required": ["rating", "summary"],
}
TEMPLATE = (
    "Review a {{ p }} you bought. Reply with JSON only: an integer rating from 1 to 5 and "
    "a summary of at most 80 characters."
)


def job(prompts: int, tokens: int, batch: int) -> Any:
    return load_spec(
        {
            "name": "bench-structured",
            "modality": "text",
            "rows": prompts,
            "shard_rows": prompts,
            "seed": 1,
            "output": "/tmp/sf-bench-structured",
            "generator": {
                "kind": "llm",
                "model": "builtin:smollm2",
                "prompt": {"template": TEMPLATE, "variables": {"p": PRODUCTS}},
                "sampling": {"max_new_tokens": tokens, "temperature": 0.8},
                "json_schema": SCHEMA,
            },
            "metrics": {"enabled": False},
            "resources": {"actors": 1, "num_cpus": 1, "math_threads": 2, "batch_size": batch},
        }
    )


class MaskClock:
    """Seconds spent in the grammar per step (bitmask fill + apply, feeding the chosen
    tokens to the matchers), and the steps."""

    def __init__(self) -> None:
        from synthfactory_workers.text import grammar

        self.seconds = 0.0
        self.calls = 0
        for name in ("mask", "accept"):
            original = getattr(grammar.RowGrammar, name)

            def timed(rows: Any, *args: Any, _original: Any = original, _name: str = name) -> Any:
                started = time.perf_counter()
                try:
                    return _original(rows, *args)
                finally:
                    self.seconds += time.perf_counter() - started
                    self.calls += _name == "mask"

            setattr(grammar.RowGrammar, name, timed)


def valid_first_try(texts: list[str]) -> int:
    import jsonschema

    from synthfactory_workers.text.filters import extract_json

    validator = jsonschema.Draft202012Validator(SCHEMA)
    ok = 0
    for text in texts:
        with contextlib.suppress(ValueError):
            ok += validator.is_valid(extract_json(text))
    return ok


def one_run(backend: Any, config: Any, requests: list[Any], batch: int) -> dict[str, float]:
    backend.config = config
    started, cpu = time.perf_counter(), time.process_time()
    out = backend.generate(requests, batch)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    backend.take_stats()
    # a row leaves the batch the step it ends (continuous batching): one row-step per token,
    # +1 for its end-of-sequence token when it stopped
    steps = sum(c.completion_tokens + (c.finish_reason == "stop") for c in out)
    tokens = sum(c.completion_tokens for c in out)
    return {
        "valid": valid_first_try([c.text for c in out]),
        "tokens_per_s": tokens / seconds,
        "row_steps_per_s": steps / seconds,
        "tokens_per_cpu_s": tokens / cpu,
        "row_steps_per_cpu_s": steps / cpu,
        "seconds": seconds,
        "tokens": tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from _text import bare_backend

    spec = job(args.prompts, args.tokens, args.batch)
    backend, requests = bare_backend(spec)
    on = spec.generator
    off = on.model_copy(
        update={"backend": on.backend.model_copy(update={"guided_decoding": False})}
    )
    clock = MaskClock()
    # warm up at the measured batch size (compiles the grammar; the first calls at a new
    # batch shape are slow on CPU and would be charged to whichever side ran first)
    one_run(backend, on, requests[: args.batch], args.batch)
    one_run(backend, off, requests[: args.batch], args.batch)
    results: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    mask_seconds = mask_calls = 0.0
    sides = (("on", on), ("off", off))
    for round_ in range(args.rounds):
        for side, config in sides if round_ % 2 == 0 else sides[::-1]:  # alternate the order
            before = (clock.seconds, clock.calls)
            results[side].append(one_run(backend, config, requests, args.batch))
            if side == "on":
                mask_seconds += clock.seconds - before[0]
                mask_calls += clock.calls - before[1]
        pair = results["on"][-1]["tokens_per_s"] / results["off"][-1]["tokens_per_s"]
        print(
            f"round {round_ + 1}: "
            + ", ".join(
                f"{side} {r[-1]['tokens_per_s']:.1f} tok/s ({r[-1]['tokens']:.0f} tokens, "
                f"{r[-1]['seconds']:.1f} s, {r[-1]['valid']:.0f} valid)"
                for side, r in results.items()
            )
            + f"; on/off {pair:.2f}x",
            flush=True,
        )
    m = {side: {k: median([r[k] for r in rs]) for k in rs[0]} for side, rs in results.items()}
    on_time = sum(r["seconds"] for r in results["on"])
    print(
        f"{args.prompts} prompts x <= {args.tokens} new tokens, batch {args.batch}, SmolLM2 on CPU"
    )
    for side in ("on", "off"):
        print(
            f"constraints {side:>3}: schema-valid first try {m[side]['valid']:.0f}/{args.prompts}, "
            f"{m[side]['tokens_per_s']:.1f} completion tokens/s, "
            f"{m[side]['row_steps_per_s']:.1f} row-steps/s (medians)"
        )
    print(
        "grammar (bitmask fill + apply + accept): "
        f"{1000 * mask_seconds / max(mask_calls, 1):.2f} ms per step, "
        f"{100 * mask_seconds / on_time:.1f} % of constrained generation time"
    )
    ratio = m["on"]["tokens_per_s"] / m["off"]["tokens_per_s"]
    steps = m["on"]["row_steps_per_s"] / m["off"]["row_steps_per_s"]
    print(f"tokens/s on/off: {ratio:.2f}x  (goal >= 0.85x: constraints cost <= 15 %)")
    for key, what in (
        ("tokens_per_s", "tokens/s"),
        ("tokens_per_cpu_s", "tokens per CPU-second"),
        ("row_steps_per_cpu_s", "row-steps per CPU-second"),
    ):
        paired = [
            on_[key] / off_[key] for on_, off_ in zip(results["on"], results["off"], strict=True)
        ]
        print(
            f"{what} on/off per round (paired): median {median(paired):.2f}x, "
            f"range {min(paired):.2f}-{max(paired):.2f}x"
        )
    print(f"row-steps/s on/off: {steps:.2f}x  (the per-step cost alone)")


if __name__ == "__main__":
    main()
