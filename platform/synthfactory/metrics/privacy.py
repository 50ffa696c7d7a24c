"""Privacy: how close synthetic rows sit to the real rows the synthesizer trained on,
measured against real rows it never saw (the holdout, see ``metrics.holdout``).

- exact_copy_rate: share of synthetic rows identical to some training row (all columns).
- DCR (distance to closest record): Gower distance from a row to its nearest training row;
  numerical columns scaled by the real range, categorical columns 0/1, averaged.
- dcr_median / dcr_p05: DCR of synthetic rows (synthetic vs train).
- dcr_holdout_median: DCR of holdout rows (holdout vs train): how close an unseen real
  record typically is.
- dcr_ratio: dcr_median / dcr_holdout_median: ~1 means synthetic rows are no closer to the
  training records than unseen real records are; well below 1 means memorisation.
- nndr_median: median nearest / second-nearest training distance ratio of synthetic rows
  (near 0 = a synthetic row singles out one training record).
- membership_inference_auc: a distance attack (score = -distance to the nearest synthetic
  row) telling training members from holdout non-members, AUC over a balanced seeded
  sample: ~0.5 safe (the synthetic rows say nothing about who was trained on), 1 = every
  member identified.
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


def _sample(df: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
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


def membership_inference(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    encoder: Encoder | None = None,
    sample: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """A distance-based membership-inference attack: the attacker scores a real record by
    minus its distance to the nearest synthetic row and guesses "trained on" for high
    scores. The AUC over a balanced seeded sample of members (train) and non-members
    (holdout): 0.5 = no better than chance, 1 = perfect."""
    rng = np.random.default_rng([seed, 1])
    n = min(len(train), len(holdout), sample)
    if n < 1 or not len(synthetic):
        return {"not_applicable": "needs training rows, holdout rows and synthetic rows"}
    import pandas as pd

    train, holdout, synthetic = (f.reset_index(drop=True) for f in (train, holdout, synthetic))
    enc = encoder or Encoder(pd.concat([train, holdout], ignore_index=True))
    members, others = _sample(train, n, rng), _sample(holdout, n, rng)
    ref = enc.encode(_sample(synthetic, sample, rng))
    d_in = nearest_two(enc.encode(members), ref, enc.width)[:, 0]
    d_out = nearest_two(enc.encode(others), ref, enc.width)[:, 0]
    return {
        "auc": auc(-d_in, -d_out),
        "members": n,
        "non_members": n,
        "attack": "minus the Gower distance to the nearest synthetic row",
        "seed": seed,
    }


def privacy_report(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    sample: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """Distances of synthetic rows to the training rows, against the holdout's (see the
    module docstring). ``holdout`` must be rows the synthesizer never saw."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    train, holdout, synthetic = (f.reset_index(drop=True) for f in (train, holdout, synthetic))
    report: dict[str, Any] = {"exact_copy_rate": exact_copy_rate(train, synthetic)}
    if len(train) < 2 or not len(holdout) or not len(synthetic):
        report["not_applicable"] = "needs at least 2 training, 1 holdout and 1 synthetic row"
        return report
    enc = Encoder(pd.concat([train, holdout], ignore_index=True))
    train_s, holdout_s = _sample(train, sample, rng), _sample(holdout, sample, rng)
    syn = _sample(synthetic, sample, rng)
    ref = enc.encode(train_s)
    syn_train = nearest_two(enc.encode(syn), ref, enc.width)
    hold_train = nearest_two(enc.encode(holdout_s), ref, enc.width)[:, 0]
    base = float(np.median(hold_train))
    with np.errstate(divide="ignore", invalid="ignore"):
        nndr = np.where(syn_train[:, 1] > 0, syn_train[:, 0] / syn_train[:, 1], 1.0)
    mia = membership_inference(train, holdout, synthetic, encoder=enc, sample=sample, seed=seed)
    report.update(
        dcr_median=float(np.median(syn_train[:, 0])),
        dcr_p05=float(np.quantile(syn_train[:, 0], 0.05)),
        dcr_holdout_median=base,
        dcr_ratio=float(np.median(syn_train[:, 0]) / base) if base > 0 else None,
        nndr_median=float(np.median(nndr)),
        membership_inference_auc=mia.get("auc"),
        membership_inference=mia,
        compared={
            "exact_copy_rate": "synthetic vs train",
            "dcr_median": "synthetic vs train",
            "dcr_holdout_median": "holdout vs train",
            "nndr_median": "synthetic vs train",
            "membership_inference_auc": "train (members) vs holdout (non-members), by "
            "distance to synthetic",
        },
        sample={
            "synthetic": len(syn),
            "train": len(train_s),
            "holdout": len(holdout_s),
            "seed": seed,
        },
    )
    return report
