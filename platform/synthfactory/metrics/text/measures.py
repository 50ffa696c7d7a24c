"""The text measures every text report is made of: the patterns (e-mail, phone, refusal,
word), distinct-n, verbatim n-gram overlap with a source, and the near-duplicate rate and
self-similarity (MinHash). Shard summaries (``text/sharded.py``) and the one-table report
(``text.quality.py``) both use them."""

from __future__ import annotations

import re

import numpy as np

from synthfactory.minhash import band_hashes, exact_key, signatures

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
