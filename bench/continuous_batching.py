"""Continuous batching: the transformers backend's decode loop (``text/decode_loop.py``: a
finished row leaves the batch and the next prompt joins at once; the prompts' common start
prefilled once) vs transformers' own ``generate()`` on static batches (the engine before
2026-12-06: each batch runs to its longest row). Same model (SmolLM2), prompts, batch size
(8), greedy decoding, threads, in this process, rounds interleaved with the order
alternated. Three workloads:

- mixed: half the prompts ask for one word, half for a long story (up to 160 tokens): the
  case static batches waste most on;
- uniform: free JSON reviews, every row runs to its 48-token cap (nothing to refill);
- constrained: the same reviews with a JSON Schema (xgrammar on both sides), rows ending
  when their JSON is complete.

Prints seconds per side per round, completion tokens, and static / loop time (> 1: the
loop is faster). No goal: a line of its own in the README.

    .venv/bin/python bench/continuous_batching.py [--rounds 3] [--batch 8]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _text import bare_backend, median
from structured_output import job

THINGS = ["kettle", "tent", "lamp", "bike", "pen", "sofa", "jacket", "drum"]


class GrammarProcessor:
    """The loop's RowGrammar as a logits processor for ``generate()`` (the old engine)."""

    def __init__(self, grammar: Any, rows: int) -> None:
        self.grammar = grammar
        self.matchers = [grammar.matcher() for _ in range(rows)]
        self.started = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.started:
            for i in self.grammar.accept(self.matchers, input_ids[:, -1].tolist()):
                self.matchers[i] = None
        self.started = True
        self.grammar.mask(scores, self.matchers)
        return scores


def static(backend: Any, requests: list[Any], batch: int, max_new: int, guided: bool) -> int:
    """transformers' generate() on batches of ``batch`` prompts, longest first."""
    import torch
    from transformers import LogitsProcessorList

    tok = backend.tokenizer
    prompts = [backend._prompt(r) for r in requests]
    size = [len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -size[i])
    stops = backend._stop_ids()
    tokens = 0
    for start in range(0, len(order), batch):
        chunk = [prompts[i] for i in order[start : start + batch]]
        inputs = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "do_sample": False,
            "pad_token_id": tok.pad_token_id,
            "temperature": None,
            "top_p": None,
            "top_k": None,
        }
        if guided:
            processor = GrammarProcessor(backend._grammar(len(chunk)), len(chunk))
            kwargs["logits_processor"] = LogitsProcessorList([processor])
        with torch.inference_mode():
            out = backend.model.generate(**inputs, **kwargs)
        for row in out[:, inputs["input_ids"].shape[1] :].tolist():
            tokens += next((n for n, t in enumerate(row) if t in stops), len(row))
    return tokens


def loop(backend: Any, requests: list[Any], batch: int) -> int:
    return sum(c.completion_tokens for c in backend.generate(requests, batch))


def workloads(spec: Any, reviews: list[Any]) -> dict[str, tuple[Any, list[Any], int, bool]]:
    from synthfactory_workers.text.backend import Request

    greedy = spec.generator.sampling.model_copy(update={"greedy": True})
    constrained = spec.generator.model_copy(update={"sampling": greedy})
    free = constrained.model_copy(update={"json_schema": None})
    long_ = free.model_copy(update={"sampling": greedy.model_copy(update={"max_new_tokens": 160})})
    mixed = [
        Request(
            [
                {
                    "role": "user",
                    "content": f"In one word, what colour is a {t}?"
                    if i % 2
                    else f"Write a long, detailed story about a {t}.",
                }
            ],
            9 + i,
        )
        for i, t in enumerate(THINGS * 2)
    ]
    return {
        "mixed": (long_, mixed, 160, False),
        "uniform": (free, reviews, 48, False),
        "constrained": (constrained, reviews, 48, True),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    spec = job(16, 48, args.batch)
    backend, reviews = bare_backend(spec)
    for name, (config, requests, max_new, guided) in workloads(spec, reviews).items():
        backend.config = config
        sides = {
            "loop": lambda r=requests: loop(backend, r, args.batch),
            "static": lambda r=requests, m=max_new, g=guided: static(backend, r, args.batch, m, g),
        }
        for run in sides.values():  # warm-up at this batch shape (and the grammar)
            run()
        seconds: dict[str, list[float]] = {"loop": [], "static": []}
        tokens: dict[str, int] = {}
        for round_ in range(args.rounds):
            for side in ("loop", "static") if round_ % 2 == 0 else ("static", "loop"):
                started = time.perf_counter()
                tokens[side] = sides[side]()
                seconds[side].append(time.perf_counter() - started)
        paired = [s / lp for s, lp in zip(seconds["static"], seconds["loop"], strict=True)]
        print(
            f"{name:>11}: loop {median(seconds['loop']):.2f} s ({tokens['loop']} tokens), "
            f"static {median(seconds['static']):.2f} s ({tokens['static']} tokens); "
            f"static/loop time per round {', '.join(f'{p:.2f}' for p in paired)} "
            f"(median {median(paired):.2f}x)",
            flush=True,
        )


if __name__ == "__main__":
    main()
