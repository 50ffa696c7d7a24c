"""Text metrics over every row, one shard at a time (parallel Ray tasks), merged exactly:

- lengths: a histogram of character counts (exact mean and median), word and token sums;
- distinct-1/2: 64-bit hashes of every distinct n-gram, unioned across shards;
- exact_duplicate_rate: one 64-bit key per row (normalised text), unioned across shards;
- refusal, JSON-valid, e-mail and phone rates, verbatim 8-gram overlap with the reference,
  and group mentions: counts.

Near-duplicate rate and self-similarity (MinHash) and the model-based metrics use a seeded
sample of ``metrics.model_sample`` rows drawn evenly from the shards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.sampling import take
from synthfactory.metrics.text.pipeline import PipelineSummary
from synthfactory.spec.generators.text import llm_config

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.spec import JobSpec

REFERENCE_N = 8


def text_column(columns: list[str]) -> str | None:
    for name in ("completion", "text"):
        if name in columns:
            return name
    return None


def job_text_column(job: JobSpec, columns: list[str]) -> str | None:
    """The column a job's text metrics score, when ``columns`` hold it: a column pipeline's
    main text column (``generator.text_column``, else its last llm_text column), else
    ``completion`` or ``text``. Shard summaries and the model-based metrics both use it."""
    llm = llm_config(job.generator)
    if llm is not None and llm.columns is not None:
        main = llm.main_text_column
        return main if main in columns else None
    return text_column(columns)


def json_columns(job: JobSpec) -> list[str] | None:
    """The columns a parsed completion fills (``json_<property>``, or ``json_value`` for a
    schema that is not an object), for jobs that request JSON (``generator.json_schema``);
    None for the others, which report no JSON-valid rate."""
    llm = llm_config(job.generator)
    schema = llm.json_schema if llm is not None else None
    if not isinstance(schema, dict):
        return None
    properties = schema.get("properties")
    names = [f"json_{k}" for k in properties] if isinstance(properties, dict) else []
    return [*names, "json_value"]


def _words(text: str) -> list[str]:
    from synthfactory.metrics.text.measures import WORD

    return list(WORD.findall(text.lower()))


def gram_hashes(texts: list[str], n: int) -> tuple[np.ndarray, int]:
    """(sorted distinct 64-bit hashes of the n-word spans, how many spans there were)."""
    import pandas as pd

    grams: list[str] = []
    for text in texts:
        words = _words(text)
        grams += ["\x1f".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return np.zeros(0, np.uint64), 0
    hashes = pd.util.hash_array(np.asarray(grams, dtype=object))
    return np.unique(hashes), len(grams)


@dataclass
class TextSummary:
    column: str
    quota: dict[int, int]
    seed: int
    reference_grams: np.ndarray | None = None
    groups: dict[str, list[str]] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    others: dict[str, TextSummary] = field(default_factory=dict)
    """The pipeline's other text columns, each with the same metrics (``columns.<name>``)."""
    pipeline: PipelineSummary | None = None
    """Judge and validator counts of a column pipeline."""
    json_columns: list[str] | None = None
    """A JSON job's parsed-value columns (``json_columns``): a row whose any of them holds a
    value parsed; None: the job requests no JSON, no ``json_valid_rate``."""

    def partial(self, df: pd.DataFrame, shard: int) -> dict[str, Any]:
        import pandas as pd

        from synthfactory.metrics.text.measures import EMAIL, PHONE, REFUSAL
        from synthfactory.minhash import exact_key

        texts = [str(t) for t in df[self.column].fillna("")]
        lengths = np.fromiter((len(t) for t in texts), np.int64, len(texts))
        out: dict[str, Any] = {
            "rows": len(texts),
            "chars": np.bincount(lengths) if len(texts) else np.zeros(1, np.int64),
            "words": sum(len(_words(t)) for t in texts),
            "refusals": sum(bool(REFUSAL.search(t)) for t in texts),
            "emails": sum(bool(EMAIL.search(t)) for t in texts),
            "phones": sum(bool(PHONE.search(t)) for t in texts),
            "keys": np.unique(np.array([exact_key(t) for t in texts], dtype=np.uint64)),
        }
        for n in (1, 2):
            out[f"grams_{n}"] = gram_hashes(texts, n)
        if "completion_tokens" in df.columns:
            tokens = pd.to_numeric(df["completion_tokens"], errors="coerce").dropna()
            out["tokens"] = (float(tokens.sum()), len(tokens))
        if self.json_columns is not None:
            parsed = [c for c in self.json_columns if c in df.columns]
            out["json_valid"] = int(df[parsed].notna().any(axis=1).sum()) if parsed else 0
        if self.reference_grams is not None:
            out["verbatim"] = sum(self._copies_reference(t) for t in texts)
        if self.groups:
            from synthfactory.metrics.text.bias import mention_counts

            out["mentions"] = mention_counts(texts, self.groups)
        keep = [c for c in [self.column, *self.extra_columns] if c in df.columns]
        out["sample"] = take(df[keep], self.quota.get(shard, len(df)), self.seed, shard)
        if self.others:
            out["columns"] = {n: s.partial(df, shard) for n, s in self.others.items()}
        if self.pipeline is not None:
            out["pipeline"] = self.pipeline.partial(df, shard)
        return out

    def _copies_reference(self, text: str) -> bool:
        assert self.reference_grams is not None
        hashes, count = gram_hashes([text], REFERENCE_N)
        return bool(count) and bool(np.isin(hashes, self.reference_grams).any())

    @staticmethod
    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        import pandas as pd

        merged: dict[str, Any] = {}
        for part in parts:
            for key, value in part.items():
                if key not in merged:
                    merged[key] = value
                elif key == "chars":
                    size = max(len(merged[key]), len(value))
                    merged[key] = np.pad(merged[key], (0, size - len(merged[key]))) + np.pad(
                        value, (0, size - len(value))
                    )
                elif key == "keys":
                    merged[key] = np.union1d(merged[key], value)
                elif key.startswith("grams_"):
                    merged[key] = (np.union1d(merged[key][0], value[0]), merged[key][1] + value[1])
                elif key == "tokens":
                    merged[key] = (merged[key][0] + value[0], merged[key][1] + value[1])
                elif key == "mentions":
                    from synthfactory.metrics.text.bias import merge_mention_counts

                    merged[key] = merge_mention_counts([merged[key], value])
                elif key == "sample":
                    merged[key] = pd.concat([merged[key], value], ignore_index=True)
                elif key == "columns":
                    merged[key] = {
                        n: TextSummary.merge([merged[key][n], value[n]]) for n in merged[key]
                    }
                elif key == "pipeline":
                    merged[key] = PipelineSummary.merge([merged[key], value])
                else:
                    merged[key] += value
        return merged

    def finish(self, merged: dict[str, Any], near_threshold: float = 0.7) -> dict[str, Any]:
        """The report's quality, privacy and (mention) bias parts from the merged summary."""
        from synthfactory.metrics.text.measures import near_duplicates

        n = merged.get("rows", 0)

        def rate(key: str) -> float | None:  # None: no text to count over
            return merged.get(key, 0) / n if n else None

        chars = merged.get("chars", np.zeros(1))
        cumulative = np.cumsum(chars)
        quality: dict[str, Any] = {
            "rows": n,
            "chars_mean": float((np.arange(len(chars)) * chars).sum() / n) if n else None,
            "chars_p50": _median(cumulative, n) if n else None,
            "words_mean": merged.get("words", 0) / n if n else None,
            "distinct_1": _distinct(merged.get("grams_1")),
            "distinct_2": _distinct(merged.get("grams_2")),
            "refusal_rate": rate("refusals"),
            "exact_duplicate_rate": 1 - len(merged["keys"]) / n if n else None,
        }
        sample = merged.get("sample")
        texts = [str(t) for t in sample[self.column].fillna("")] if sample is not None else []
        near = near_duplicates(texts, near_threshold, seed=self.seed)
        quality["near_duplicate_rate"] = near["near_duplicate_rate"] if texts else None
        quality["self_similarity"] = near["self_similarity"] if len(texts) > 1 else None
        quality["rows_sampled"] = len(texts)
        if not n:
            quality["not_applicable"] = f"no rows with a {self.column!r} text"
        if "tokens" in merged and merged["tokens"][1]:
            quality["completion_tokens_mean"] = merged["tokens"][0] / merged["tokens"][1]
        if "json_valid" in merged:
            quality["json_valid_rate"] = rate("json_valid")
        privacy: dict[str, Any] = {
            "pii_email_rate": rate("emails"),
            "pii_phone_rate": rate("phones"),
            "verbatim_8gram_overlap_rate": rate("verbatim") if "verbatim" in merged else None,
        }
        return {"quality": quality, "privacy": privacy}


def reference_grams(texts: list[str]) -> np.ndarray:
    return gram_hashes(texts, REFERENCE_N)[0]


def _distinct(grams: tuple[np.ndarray, int] | None) -> float | None:
    """Distinct n-grams over all n-grams; None when the texts hold none."""
    if grams is None or not grams[1]:
        return None
    return len(grams[0]) / grams[1]


def _median(cumulative: np.ndarray, n: int) -> float:
    """The median of a histogram (mean of the two middle values for an even count)."""
    if not n:
        return 0.0
    lo = int(np.searchsorted(cumulative, (n - 1) // 2 + 1))
    hi = int(np.searchsorted(cumulative, n // 2 + 1))
    return (lo + hi) / 2
