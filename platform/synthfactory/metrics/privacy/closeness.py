"""Privacy: how close synthetic rows sit to the real rows the synthesizer trained on,
measured against real rows it never saw (the holdout, see ``metrics.holdout``).

- exact_copy_rate: share of synthetic rows identical to some training row (all columns).
- DCR (distance to closest record): Gower distance from a row to its nearest training row;
  numerical columns scaled by the real range, categorical columns 0/1, averaged.
- dcr_median / dcr_p05: DCR of synthetic rows to the training rows (synthetic vs train).
- dcr_holdout_median: DCR of synthetic rows to the holdout rows (synthetic vs holdout).
- dcr_ratio: median DCR of synthetic rows to a seeded sample of training rows the size of
  the holdout, over their median DCR to the holdout. Both reference sets are real rows from
  one population, of one size, so a generator that learned the population (well or badly)
  sits as close to either: ~1. Below 1 the synthetic rows sit closer to the records the
  synthesizer saw: 0 is a copy of the training rows. Fidelity does not move it, unlike a
  ratio against holdout-to-train distances.
  Training rows outside that sample cannot pull it down, so it is diluted by the split: a
  generator that copies every training row reads ~|holdout|/|train| of the copies as
  copies (penguins at 80/20: ~0.85 for a pure memoriser). The next score is not diluted.
- dcr_closer_to_train_share p: share of synthetic rows whose closest real row, among the
  training and holdout rows together, is a training row (ties count as the expected
  share). Training and holdout rows are exchangeable draws of one population, so a
  generator that did not copy its training rows gives p0 = |train| / (|train| + |holdout|)
  (``dcr_closer_to_train_expected``); a copier gives 1.
- dcr_overfitting_protection (SDMetrics' DCROverfittingProtection): ``min(1, (1 - p) /
  (1 - p0))``, 1 = never closer to training than chance allows, 0 = always closer. With
  equal-size sets (p0 = 1/2) this is SDMetrics' ``min(1, 2 * (1 - p))`` exactly. Departure:
  SDMetrics keeps 1/2 whatever the sizes, so at an 80/20 split a perfect generator would
  read ~0.4; we use the expected share of the sizes actually compared.
- nndr_median: median nearest / second-nearest training distance ratio of synthetic rows
  (near 0 = a synthetic row singles out one training record).
- membership_inference_auc: a distance attack (score = -distance to the nearest synthetic
  row) telling training members from holdout non-members, AUC over a balanced seeded
  sample: ~0.5 safe (the synthetic rows say nothing about who was trained on), 1 = every
  member identified.
- mia: membership inference by an ensemble of attacks, AUC and TPR at 1 % and 0.1 % FPR
  (``metrics.attacks``).
- singling_out, linkability, inference: Anonymeter's risks (``metrics.anonymity``).
Distances are computed exactly, in chunks, on seeded samples whose sizes are reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.privacy.distance import Encoder, auc, nearest_two, sample_rows

if TYPE_CHECKING:
    import pandas as pd


#: which rows each score compares (reported beside the numbers)
COMPARED = {
    "exact_copy_rate": "synthetic vs train",
    "dcr_median": "synthetic vs train",
    "dcr_holdout_median": "synthetic vs holdout",
    "dcr_ratio": "synthetic vs train (a sample the holdout's size) over synthetic vs holdout",
    "dcr_overfitting_protection": "synthetic vs train against synthetic vs holdout, row by row",
    "nndr_median": "synthetic vs train",
    "membership_inference_auc": "train (members) vs holdout (non-members), by "
    "distance to synthetic",
    "mia": "train (members) vs holdout (non-members), by an ensemble of attacks "
    "with the synthetic rows, each holdout half the other's reference",
    "singling_out": "train vs holdout rows, by predicates from synthetic rows",
    "linkability": "train vs holdout rows, linked through synthetic rows",
    "inference": "train vs holdout rows, secrets read off synthetic rows",
}


def exact_copy_rate(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    import pandas as pd

    columns = [c for c in real.columns if c in synthetic.columns]
    if not len(synthetic):
        return 0.0

    def hashes(df: pd.DataFrame) -> np.ndarray:
        frame = df[columns].astype(object).where(df[columns].notna(), None).astype(str)
        return pd.util.hash_pandas_object(frame, index=False).to_numpy()

    return float(np.isin(hashes(synthetic), hashes(real)).mean())


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
    members, others = sample_rows(train, n, rng), sample_rows(holdout, n, rng)
    ref = enc.encode(sample_rows(synthetic, sample, rng))
    d_in = nearest_two(enc.encode(members), ref, enc.width)[:, 0]
    d_out = nearest_two(enc.encode(others), ref, enc.width)[:, 0]
    return {
        "auc": auc(-d_in, -d_out),
        "members": n,
        "non_members": n,
        "attack": "minus the Gower distance to the nearest synthetic row",
        "seed": seed,
    }


def by_attack(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    enc: Encoder,
    sample: int,
    seed: int,
) -> dict[str, Any]:
    """The membership-inference ensemble (``mia``) and Anonymeter's three risks."""
    from synthfactory.metrics.privacy.anonymity import anonymity_report
    from synthfactory.metrics.privacy.attacks import membership_attacks

    mia = membership_attacks(train, holdout, synthetic, encoder=enc, sample=sample, seed=seed)
    risks = anonymity_report(train, holdout, synthetic, encoder=enc, sample=sample, seed=seed)
    return {"mia": mia, **risks}


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
    train_s, holdout_s = sample_rows(train, sample, rng), sample_rows(holdout, sample, rng)
    train_eq = sample_rows(train_s, len(holdout_s), rng)  # the holdout's size: see dcr_ratio
    syn = sample_rows(synthetic, sample, rng)
    syn_enc = enc.encode(syn)
    syn_train = nearest_two(syn_enc, enc.encode(train_s), enc.width)
    syn_train_eq = nearest_two(syn_enc, enc.encode(train_eq), enc.width)[:, 0]
    syn_hold = nearest_two(syn_enc, enc.encode(holdout_s), enc.width)[:, 0]
    base = float(np.median(syn_hold))
    expected = len(train_s) / (len(train_s) + len(holdout_s))
    d_train = syn_train[:, 0]
    closer = float(np.mean((d_train < syn_hold) + expected * (d_train == syn_hold)))
    with np.errstate(divide="ignore", invalid="ignore"):
        nndr = np.where(syn_train[:, 1] > 0, syn_train[:, 0] / syn_train[:, 1], 1.0)
    mia = membership_inference(train, holdout, synthetic, encoder=enc, sample=sample, seed=seed)
    report.update(by_attack(train, holdout, synthetic, enc, sample, seed))
    eq_median = float(np.median(syn_train_eq))
    report.update(
        dcr_median=float(np.median(syn_train[:, 0])),
        dcr_p05=float(np.quantile(syn_train[:, 0], 0.05)),
        dcr_holdout_median=base,
        dcr_ratio=eq_median / base if base > 0 else (1.0 if eq_median == 0 else None),
        dcr_closer_to_train_share=closer,
        dcr_closer_to_train_expected=expected,
        dcr_overfitting_protection=min(1.0, (1 - closer) / (1 - expected)),
        nndr_median=float(np.median(nndr)),
        membership_inference_auc=mia.get("auc"),
        membership_inference=mia,
        compared=dict(COMPARED),
        sample={
            "synthetic": len(syn),
            "train": len(train_s),
            "train_for_ratio": len(train_eq),
            "holdout": len(holdout_s),
            "seed": seed,
        },
    )
    return report
