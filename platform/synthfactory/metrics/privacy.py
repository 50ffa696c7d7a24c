"""Privacy: how close synthetic rows sit to real ones.

- exact_copy_rate: share of synthetic rows identical to some real row (all columns).
- DCR (distance to closest record): Gower distance from each synthetic row to its nearest
  real row; numerical columns scaled by the real range, categorical columns 0/1, averaged.
- dcr_ratio: median DCR(synthetic -> real train) / median DCR(real holdout -> real train),
  with a seeded 50/50 split of the real rows: ~1 means synthetic rows are no closer to real
  records than unseen real records are; well below 1 means memorisation.
- nndr_median: median nearest / second-nearest real distance ratio (near 0 = singled out).
Distances are computed exactly, in chunks, on seeded samples whose sizes are reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.columns import NUMERIC, kind, numeric_values

if TYPE_CHECKING:
    import pandas as pd


def exact_copy_rate(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    import pandas as pd

    columns = [c for c in real.columns if c in synthetic.columns]
    if not len(synthetic):
        return 0.0

    def hashes(df: pd.DataFrame) -> np.ndarray:
        frame = df[columns].astype(object).where(df[columns].notna(), None).astype(str)
        return pd.util.hash_pandas_object(frame, index=False).to_numpy()

    return float(np.isin(hashes(synthetic), hashes(real)).mean())


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
    qn, qc = query
    rn, rc = ref
    out = np.empty((len(qn), 2))
    for start in range(0, len(qn), chunk):
        d = np.zeros((min(chunk, len(qn) - start), len(rn)))
        if rn.shape[1]:
            d += np.abs(qn[start : start + chunk, None, :] - rn[None, :, :]).clip(0, 1).sum(-1)
        if rc.shape[1]:
            d += (qc[start : start + chunk, None, :] != rc[None, :, :]).sum(-1)
        d /= max(width, 1)
        two = np.partition(d, 1, axis=1)[:, :2] if d.shape[1] > 1 else np.repeat(d, 2, 1)
        out[start : start + chunk] = np.sort(two, axis=1)
    return out


def privacy_report(
    real: pd.DataFrame, synthetic: pd.DataFrame, *, sample: int = 5000, seed: int = 0
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    report: dict[str, Any] = {"exact_copy_rate": exact_copy_rate(real, synthetic)}
    if len(real) < 4 or not len(synthetic):
        report["dcr"] = {"not_applicable": "needs at least 4 real and 1 synthetic row"}
        return report
    real = real.reset_index(drop=True)
    order = rng.permutation(len(real))
    train, holdout = real.iloc[order[: len(real) // 2]], real.iloc[order[len(real) // 2 :]]
    train = train.iloc[:sample] if len(train) > sample else train
    holdout = holdout.iloc[:sample] if len(holdout) > sample else holdout
    syn = (
        synthetic.sample(min(sample, len(synthetic)), random_state=seed)
        if len(synthetic) > sample
        else synthetic
    )
    enc = Encoder(real)
    ref_all = enc.encode(real.iloc[: max(sample * 2, 1)] if len(real) > 2 * sample else real)
    syn_all = nearest_two(enc.encode(syn), ref_all, enc.width)
    syn_train = nearest_two(enc.encode(syn), enc.encode(train), enc.width)[:, 0]
    hold_train = nearest_two(enc.encode(holdout), enc.encode(train), enc.width)[:, 0]
    base = float(np.median(hold_train))
    with np.errstate(divide="ignore", invalid="ignore"):
        nndr = np.where(syn_all[:, 1] > 0, syn_all[:, 0] / syn_all[:, 1], 1.0)
    report.update(
        dcr_median=float(np.median(syn_all[:, 0])),
        dcr_p05=float(np.quantile(syn_all[:, 0], 0.05)),
        dcr_holdout_median=base,
        dcr_ratio=float(np.median(syn_train) / base) if base > 0 else None,
        nndr_median=float(np.median(nndr)),
        sample={"synthetic": len(syn), "train": len(train), "holdout": len(holdout), "seed": seed},
    )
    return report
