"""What the privacy scores (``privacy``) and attacks (``attacks``, ``anonymity``) share:
rows encoded for Gower distance (numbers scaled by the real range, categories 0/1), the
nearest and second-nearest distances in chunks, seeded row samples and the rank AUC."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.tabular.sdtypes import NUMERIC, kind, numeric_values

if TYPE_CHECKING:
    import pandas as pd


class Encoder:
    """Rows as numeric vectors for Gower distance, fitted on the real data."""

    def __init__(self, real: pd.DataFrame) -> None:
        self.numeric: list[tuple[str, float, float]] = []
        self.categorical: list[tuple[str, dict[Any, int]]] = []
        for c in real.columns:
            k = kind(real[c])
            if k == NUMERIC:
                v = numeric_values(real[c])
                lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.0, 1.0)
                self.numeric.append((c, lo, (hi - lo) or 1.0))
            elif k is not None:
                values = real[c].astype(object).where(real[c].notna(), None).unique()
                self.categorical.append((c, {v: i for i, v in enumerate(values)}))

    @property
    def width(self) -> int:
        return len(self.numeric) + len(self.categorical)

    def encode(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        num = (
            np.column_stack(
                [
                    ((numeric_values(df[c]).reindex(df.index).to_numpy() - lo) / span)
                    for c, lo, span in self.numeric
                ]
            )
            if self.numeric
            else np.zeros((len(df), 0))
        )
        num = np.nan_to_num(num, nan=-1.0)  # a missing value is far from any present one
        cat = (
            np.column_stack(
                [
                    df[c]
                    .astype(object)
                    .where(df[c].notna(), None)
                    .map(lambda v, m=m: m.get(v, -1))
                    .to_numpy(dtype=np.int64)
                    for c, m in self.categorical
                ]
            )
            if self.categorical
            else np.zeros((len(df), 0), dtype=np.int64)
        )
        return num, cat


def nearest_two(
    query: tuple[np.ndarray, np.ndarray],
    ref: tuple[np.ndarray, np.ndarray],
    width: int,
    chunk: int = 256,
) -> np.ndarray:
    """(n_query, 2): Gower distance to the nearest and second-nearest reference row."""
    out = np.empty((len(query[0]), 2))
    for start, d in gower_sums(query, ref, chunk):
        d /= max(width, 1)
        two = np.partition(d, 1, axis=1)[:, :2] if d.shape[1] > 1 else np.repeat(d, 2, 1)
        out[start : start + len(d)] = np.sort(two, axis=1)
    return out


def gower_sums(
    query: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray], chunk: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(first query row, its chunk's (rows, n_ref) sums of per-column Gower distances):
    numeric differences (already scaled to [0, 1]) clipped at 1, categories 0/1."""
    qn, qc = query
    rn, rc = ref
    for start in range(0, len(qn), chunk):
        d = np.zeros((min(chunk, len(qn) - start), len(rn)))
        if rn.shape[1]:
            d += np.abs(qn[start : start + chunk, None, :] - rn[None, :, :]).clip(0, 1).sum(-1)
        if rc.shape[1]:
            d += (qc[start : start + chunk, None, :] != rc[None, :, :]).sum(-1)
        yield start, d


def sample_rows(df: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``size`` of ``df``'s rows, drawn without replacement, in their order."""
    if len(df) <= size:
        return df
    return df.iloc[np.sort(rng.choice(len(df), size, replace=False))]


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting one half (the
    Mann-Whitney form of the ROC AUC)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
