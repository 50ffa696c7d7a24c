"""Tabular quality with SDMetrics' published definitions and names, so numbers compare:

- KSComplement = 1 - D, the two-sample Kolmogorov-Smirnov statistic (numerical/datetime).
- TVComplement = 1 - TVD, TVD = 1/2 * sum |R_k - S_k| over categories (nulls are a category).
- Column Shapes = mean of the two above over every column they apply to.
- CorrelationSimilarity = 1 - |r_S - r_R| / 2 with Pearson's r (numerical pairs).
- ContingencySimilarity = 1 - 1/2 * sum |R_ab - S_ab| over the 2-D frequency table
  (pairs with a categorical column; numerical columns binned into 10 bins of the real data).
- Column Pair Trends = mean over pairs; Overall = mean of Column Shapes and Pair Trends.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from synthfactory.metrics.columns import NUMERIC, kind, numeric_values

if TYPE_CHECKING:
    import pandas as pd


def ks_complement(real: pd.Series, synthetic: pd.Series) -> float:
    from scipy.stats import ks_2samp

    r, s = numeric_values(real), numeric_values(synthetic)
    if len(r) == 0 or len(s) == 0:
        return float("nan")
    return float(1.0 - ks_2samp(r.to_numpy(), s.to_numpy()).statistic)


def _frequencies(series: pd.Series) -> pd.Series:
    return series.astype(object).where(series.notna(), "<null>").value_counts(normalize=True)


def tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    r, s = _frequencies(real), _frequencies(synthetic)
    keys = r.index.union(s.index)
    tvd = 0.5 * float(np.abs(r.reindex(keys, fill_value=0) - s.reindex(keys, fill_value=0)).sum())
    return 1.0 - tvd


def correlation_similarity(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    a: str,
    b: str,
    method: Literal["pearson", "spearman"] = "pearson",
) -> float:
    def corr(df: pd.DataFrame) -> float:
        pair = df[[a, b]].apply(lambda c: numeric_values(c).reindex(c.index)).dropna()
        if len(pair) < 2 or pair[a].std() == 0 or pair[b].std() == 0:
            return float("nan")
        return float(pair[a].corr(pair[b], method=method))

    r, s = corr(real), corr(synthetic)
    if np.isnan(r) or np.isnan(s):
        return float("nan")
    return 1.0 - abs(s - r) / 2.0


def _discretize(real: pd.Series, other: pd.Series, bins: int = 10) -> tuple[Any, Any]:
    import pandas as pd

    r = numeric_values(real).reindex(real.index)
    o = numeric_values(other).reindex(other.index)
    edges = np.unique(np.quantile(r.dropna(), np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return r.astype(object), o.astype(object)
    edges[0], edges[-1] = -np.inf, np.inf
    return (
        pd.cut(r, list(edges), labels=False).astype(object),
        pd.cut(o, list(edges), labels=False).astype(object),
    )


def contingency_similarity(
    real: pd.DataFrame, synthetic: pd.DataFrame, a: str, b: str, kinds: dict[str, str]
) -> float:
    import pandas as pd

    cols_r, cols_s = {}, {}
    for c in (a, b):
        if kinds[c] == NUMERIC:
            cols_r[c], cols_s[c] = _discretize(real[c], synthetic[c])
        else:
            cols_r[c], cols_s[c] = real[c].astype(object), synthetic[c].astype(object)

    def table(cols: dict[str, Any]) -> pd.Series:
        frame = pd.DataFrame(cols).fillna("<null>").astype(str)
        return frame.value_counts(normalize=True)

    r, s = table(cols_r), table(cols_s)
    keys = r.index.union(s.index)
    tvd = 0.5 * float(np.abs(r.reindex(keys, fill_value=0) - s.reindex(keys, fill_value=0)).sum())
    return 1.0 - tvd


def quality_report(
    real: pd.DataFrame, synthetic: pd.DataFrame, *, max_pairs: int = 500, seed: int = 0
) -> dict[str, Any]:
    """Column shapes, column pair trends and the overall score, with per-column detail."""
    columns = [c for c in real.columns if c in synthetic.columns]
    kinds = {c: k for c in columns if (k := kind(real[c])) is not None}
    shapes: dict[str, dict[str, Any]] = {}
    for c, k in kinds.items():
        if k == NUMERIC:
            shapes[c] = {"metric": "KSComplement", "score": ks_complement(real[c], synthetic[c])}
        else:
            shapes[c] = {"metric": "TVComplement", "score": tv_complement(real[c], synthetic[c])}
    pairs = list(itertools.combinations(kinds, 2))
    sampled = len(pairs) > max_pairs
    if sampled:
        rng = np.random.default_rng(seed)
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), max_pairs, replace=False))]
    trends: dict[str, dict[str, Any]] = {}
    for a, b in pairs:
        if kinds[a] == NUMERIC and kinds[b] == NUMERIC:
            score = correlation_similarity(real, synthetic, a, b)
            metric = "CorrelationSimilarity"
        else:
            score = contingency_similarity(real, synthetic, a, b, kinds)
            metric = "ContingencySimilarity"
        trends[f"{a} | {b}"] = {"metric": metric, "score": score}
    shape_score = _mean(v["score"] for v in shapes.values())
    trend_score = _mean(v["score"] for v in trends.values())
    overall = _mean([shape_score, trend_score])
    return {
        "overall": overall,
        "column_shapes": shape_score,
        "column_pair_trends": trend_score,
        "columns": shapes,
        "pairs": trends,
        "pairs_sampled": {"sampled": sampled, "pairs": len(pairs), "seed": seed},
        "rows": {"real": len(real), "synthetic": len(synthetic)},
    }


def _mean(values: Any) -> float | None:
    finite = [float(v) for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(finite)) if finite else None
