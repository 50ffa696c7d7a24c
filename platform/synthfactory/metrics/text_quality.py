"""Text metrics: length and token statistics, distinct-n, near-duplicate rate and
self-similarity (MinHash), JSON-valid and refusal rates, PII found in outputs, verbatim
n-gram overlap with a source (embedding diversity, which loads MiniLM, is in
synthfactory_workers.metrics.minilm)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.minhash import band_hashes, exact_key, signatures

if TYPE_CHECKING:
    import pandas as pd

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(
    r"(?<!\w)(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)|\d{2,4})[\s.-]?\d{3,4}[\s.-]?\d{3,4}(?!\w)"
)
REFUSAL = re.compile(
    r"\b(i can(?:no|')t|i am unable|i'm unable|as an ai|i won't|i cannot "
    r"(?:help|assist|provide))\b",
    re.IGNORECASE,
)
WORD = re.compile(r"\w+", re.UNICODE)


def distinct_n(texts: list[str], n: int) -> float:
    grams: list[tuple[str, ...]] = []
    for text in texts:
        words = WORD.findall(text.lower())
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def ngram_overlap(texts: list[str], source: list[str], n: int = 8) -> float:
    """Share of outputs containing at least one verbatim n-word span of the source."""
    seen: set[tuple[str, ...]] = set()
    for text in source:
        words = WORD.findall(text.lower())
        seen.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    if not texts:
        return 0.0
    hits = 0
    for text in texts:
        words = WORD.findall(text.lower())
        if any(tuple(words[i : i + n]) in seen for i in range(len(words) - n + 1)):
            hits += 1
    return hits / len(texts)


def near_duplicates(
    texts: list[str], threshold: float = 0.7, seed: int = 0, sample: int = 2000
) -> dict[str, float]:
    if not texts:
        return {"exact_duplicate_rate": 0.0, "near_duplicate_rate": 0.0, "self_similarity": 0.0}
    keys = [exact_key(t) for t in texts]
    exact = 1 - len(set(keys)) / len(keys)
    sigs = signatures(texts)
    bands = band_hashes(sigs, threshold)
    from synthfactory.dataset.dedup import band_duplicates

    near = float(band_duplicates(bands, np.ones(len(texts), bool)).mean())
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(texts), min(sample, len(texts) ** 2))
    j = rng.integers(0, len(texts), len(i))
    keep = i != j
    sim = float((sigs[i[keep]] == sigs[j[keep]]).mean()) if keep.any() else 0.0
    return {"exact_duplicate_rate": exact, "near_duplicate_rate": near, "self_similarity": sim}


def text_report(
    synthetic: pd.DataFrame, reference: list[str] | None, seed: int = 0
) -> dict[str, Any]:
    """Every shard-summarised text metric on one in-memory table (a job computes the same
    shard by shard; the model-based ones are in ``synthfactory_workers.metrics``)."""
    from synthfactory.metrics.text_sharded import TextSummary, reference_grams, text_column

    column = text_column([str(c) for c in synthetic.columns])
    if column is None:
        return {"not_applicable": "no completion or text column"}
    parsed = [c for c in synthetic.columns if str(c).startswith("json_") and c != "json_attempt"]
    summary = TextSummary(
        column,
        {},
        seed,
        reference_grams(reference) if reference else None,
        json_columns=[str(c) for c in parsed] or None,
    )
    report: dict[str, Any] = {
        "modality": "text",
        **summary.finish(TextSummary.merge([summary.partial(synthetic, 0)])),
        "bias": {"not_applicable": "no metrics.groups declared"},
    }
    return report
