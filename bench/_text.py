"""Shared pieces of the text benchmarks: one spec, its prompts, a bare transformers model."""

from __future__ import annotations

import tempfile
import time
from typing import Any

import _common  # noqa: F401  (env defaults)
from synthfactory.spec import load_spec

PRODUCTS = ["mug", "lamp", "bike", "tent", "chair", "kettle", "scarf", "drone"]


def spec(prompts: int, max_new_tokens: int, batch_size: int, output: str | None = None) -> Any:
    return load_spec(
        {
            "name": "bench-text",
            "modality": "text",
            "rows": prompts,
            "shard_rows": prompts,
            "seed": 1,
            "output": output or tempfile.mkdtemp(prefix="sf-bench-text-"),
            "generator": {
                "kind": "llm",
                "model": "builtin:smollm2",
                "prompt": {
                    "template": "Write a short review of a {{ p }}.",
                    "variables": {"p": PRODUCTS},
                },
                "sampling": {"max_new_tokens": max_new_tokens, "temperature": 0.8},
                "dedup": {"exact": False, "near": False},
                "filters": {"min_chars": 0},
            },
            "metrics": {"enabled": False},
            "resources": {"actors": 1, "num_cpus": 1, "math_threads": 2, "batch_size": batch_size},
        }
    )


def bare_model(job: Any) -> tuple[Any, Any, list[str]]:
    """The same model, dtype and chat-formatted prompts, loaded with plain transformers."""
    from synthfactory_workers.prompt_sampler import PromptSampler
    from synthfactory_workers.text.transformers_backend import TransformersBackend

    backend = TransformersBackend(job.generator)
    backend.load()
    sampler = PromptSampler(job.generator.prompt)
    texts = []
    for i in range(job.rows):
        messages = [{"role": "user", "content": sampler.render(i, 1).text}]
        texts.append(
            backend.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        )
    return backend.model, backend.tokenizer, texts


def generate_bare(
    model: Any, tokenizer: Any, prompts: list[str], batch_size: int, max_new_tokens: int
) -> tuple[int, float]:
    """(generated tokens, seconds) with model.generate's own sampling, batches as given."""
    import torch

    tokens = 0
    started = time.perf_counter()
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(
            prompts[start : start + batch_size],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        with torch.inference_mode():
            out = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=True,
                temperature=0.8,
                top_p=0.95,
                top_k=50,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = out[:, batch["input_ids"].shape[1] :]
        eos = {tokenizer.eos_token_id, tokenizer.pad_token_id}
        for row in new.tolist():
            tokens += next((i for i, t in enumerate(row) if t in eos), len(row))
    return tokens, time.perf_counter() - started


def bare_backend(job: Any) -> tuple[Any, list[Any]]:
    """The platform's own backend, loaded in this process with the actor's thread count, and
    the shard's requests built as the generator builds them (same prompts, one seed each)."""
    import os

    from synthfactory_workers.prompt_sampler import PromptSampler
    from synthfactory_workers.text.backend import Request, open_backend
    from synthfactory_workers.text.kinds.prompt import row_seed
    from synthfactory_workers.threads import limit_torch_threads

    os.environ["SYNTHFACTORY_TORCH_THREADS"] = str(job.resources.math_threads or 1)
    limit_torch_threads()
    backend = open_backend(job.generator)
    backend.load()
    sampler = PromptSampler(job.generator.prompt)
    requests = [
        Request([{"role": "user", "content": sampler.render(i, 1).text}], row_seed(1, i, 0, 0))
        for i in range(job.rows)
    ]
    return backend, requests


def generate_backend(backend: Any, requests: list[Any], batch_size: int) -> tuple[int, float]:
    """(generated tokens, seconds) of the backend called bare, in this process."""
    started = time.perf_counter()
    completions = backend.generate(requests, batch_size)
    return sum(c.completion_tokens for c in completions), time.perf_counter() - started


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
