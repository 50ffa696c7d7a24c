"""Perplexity of texts under a reference causal LM (teacher-forced, token-level NLL).

Each text is tokenised without special tokens, truncated to ``max_tokens`` tokens and
prefixed with one context token so that its first token is scored too (see
``context_token``); batches are right-padded and padded positions are masked out of the
loss. A text's
perplexity is exp(mean NLL over its tokens); the corpus perplexity is
exp(total NLL / total tokens). Models load through the generator's own loader
(``load_causal_lm``), so Hugging Face ids, folders, .gguf files and ``builtin:smollm2``
(dequantised once per node and cached) all work, and a loaded model is kept per
(model, device) in this process.
"""

from __future__ import annotations

import math
from typing import Any

from synthfactory.errors import ConfigError
from synthfactory_workers.devices import resolve_device
from synthfactory_workers.text.models import load_causal_lm, resolve

# (model as given, resolved device) -> (model, tokenizer, identity)
_LOADED: dict[tuple[str, str], tuple[Any, Any, str]] = {}


def _dtype(device: str) -> Any:
    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32  # fp32 on CPU: exact, deterministic scores


def _load(model: str, device: str) -> tuple[Any, Any, str]:
    key = (model, device)
    if key not in _LOADED:
        _, _, identity = resolve(model, None)
        try:
            lm, tokenizer = load_causal_lm(model, None, None, _dtype(device), device)
        except (OSError, ValueError) as exc:  # not a causal LM, unreadable files, ...
            raise ConfigError(
                f"cannot load perplexity model {model!r}: {exc}",
                fix="pass a causal LM: a Hugging Face id, a local folder with config.json, "
                "a .gguf file, or builtin:smollm2",
            ) from None
        _LOADED[key] = (lm, tokenizer, identity)
    return _LOADED[key]


def context_token(tokenizer: Any) -> int | None:
    """The token a text is scored after: the BOS the tokenizer adds by itself (Llama-style
    models are trained with it); else the ``<|endoftext|>`` document separator (GPT-2, Qwen,
    SmolLM: on SmolLM2 it gives the first word a far lower loss than its BOS <|im_start|>,
    which announces a chat turn); else BOS, else EOS; None when there is none."""
    bos = tokenizer.bos_token_id
    if bos is not None:
        probe = list(tokenizer("a")["input_ids"])
        if probe and probe[0] == bos:
            return int(bos)
    vocab = tokenizer.get_vocab()
    if "<|endoftext|>" in vocab:
        return int(vocab["<|endoftext|>"])
    for token in (bos, tokenizer.eos_token_id):
        if token is not None:
            return int(token)
    return None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def perplexity(
    texts: list[str],
    model: str,
    device: str = "auto",
    batch_size: int = 8,
    max_tokens: int = 256,
) -> dict[str, Any]:
    """Perplexity of each text under ``model``.

    Returns {"model": resolved id, "texts_scored", "skipped_empty", "mean", "p50", "p95"
    (of the per-text perplexities), "corpus": exp(total NLL / total tokens), "per_text":
    perplexity per input text in input order, None for skipped ones}. Empty (or
    whitespace-only) texts are skipped and counted; the statistics are None when nothing
    was scored.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    resolved_device = resolve_device(device)
    lm, tokenizer, identity = _load(model, resolved_device)
    sequences = _sequences(texts, tokenizer, max_tokens)
    skipped = len(texts) - len(sequences)
    nll, counts = _losses(lm, tokenizer, sequences, resolved_device, batch_size)

    per_text: list[float | None] = [None] * len(texts)
    for i in sequences:
        per_text[i] = math.exp(nll[i] / counts[i])
    scored = [p for p in per_text if p is not None]
    total_tokens = sum(counts.values())
    return {
        "model": identity,
        "texts_scored": len(scored),
        "skipped_empty": skipped,
        "mean": float(sum(scored) / len(scored)) if scored else None,
        "p50": _percentile(scored, 50),
        "p95": _percentile(scored, 95),
        "corpus": math.exp(sum(nll.values()) / total_tokens) if total_tokens else None,
        "per_text": per_text,
    }


def _sequences(texts: list[str], tokenizer: Any, max_tokens: int) -> dict[int, list[int]]:
    """Token ids per scorable text, by its index: the first is context only, the rest are
    scored (a one-token text without a context token has nothing to score and is left out,
    as are empty ones)."""
    start = context_token(tokenizer)
    prefix = [start] if start is not None else []
    sequences: dict[int, list[int]] = {}
    for i, text in enumerate(texts):
        if not text or not text.strip():
            continue
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])[:max_tokens]
        sequence = prefix + [int(t) for t in ids]
        if len(sequence) >= 2:
            sequences[i] = sequence
    return sequences


def _losses(
    lm: Any, tokenizer: Any, sequences: dict[int, list[int]], device: str, batch_size: int
) -> tuple[dict[int, float], dict[int, int]]:
    """({text: summed negative log-likelihood}, {text: tokens scored}), in padded batches,
    longest first (batches of similar length waste less compute on padding)."""
    import torch

    order = sorted(sequences, key=lambda i: -len(sequences[i]))
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    nll: dict[int, float] = {}
    counts: dict[int, int] = {}
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            chunk = order[b : b + batch_size]
            width = max(len(sequences[i]) for i in chunk)
            tokens = torch.full((len(chunk), width), int(pad), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                seq = sequences[i]
                tokens[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                mask[row, : len(seq)] = 1
            tokens, mask = tokens.to(device), mask.to(device)
            logits = lm(input_ids=tokens, attention_mask=mask).logits
            for row, i in enumerate(chunk):
                # row by row, over its real tokens only: padding never enters the loss, and
                # only one row's fp32 copy of the (tokens x vocabulary) logits is alive
                length = len(sequences[i])
                loss = torch.nn.functional.cross_entropy(
                    logits[row, : length - 1].float(), tokens[row, 1:length], reduction="sum"
                )
                nll[i] = float(loss)
                counts[i] = length - 1
            del logits
    return nll, counts
