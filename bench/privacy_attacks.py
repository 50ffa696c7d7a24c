"""Privacy by attack: what the membership-inference ensemble and Anonymeter's three risks
cost, and what they read, for the quickstart copula and a planted memoriser.

Baseline: the distance attack the report already had (``privacy.membership_inference``:
minus the Gower distance to the closest synthetic row, AUC only). Measured: the ensemble
(``attacks.membership_attacks``: three attacks and their ensemble, AUC and TPR at 1 % and
0.1 % FPR) and the three risks (``anonymity.anonymity_report``), on the same rows in the
same run. Ratio = seconds / baseline seconds (the cost of the new scores).

A mixed table (numbers, integer codes, categories, 5 % nulls) of ``--rows`` rows, 80/20
train/holdout; synthetic rows: the Gaussian copula fitted on the training rows, and a
memoriser (the training rows again, numbers moved by 0.2 % of their range).

    .venv/bin/python bench/privacy_attacks.py [--rows N]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd

import _common  # noqa: F401  (environment defaults)
from synthfactory.metrics.privacy.anonymity import anonymity_report
from synthfactory.metrics.privacy.attacks import membership_attacks
from synthfactory.metrics.privacy.closeness import membership_inference
from synthfactory.metrics.tabular import holdout


def table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "age": np.clip(np.round(40 + 12 * z + rng.normal(0, 8, n)), 18, 90),
            "income": np.round(np.exp(10 + 0.4 * z + rng.normal(0, 0.5, n)), -2),
            "region": rng.integers(1, 10, n),
            "answer": np.clip(np.round(3 + z + rng.normal(0, 1, n)), 1, 5),
            "job": rng.choice(["clerk", "nurse", "driver", "teacher", "cook"], n),
            "smoker": rng.random(n) < 0.2 + 0.1 * (z > 0),
        }
    )
    df.loc[rng.random(n) < 0.05, "income"] = np.nan
    return df


def memoriser(train: pd.DataFrame) -> pd.DataFrame:
    rows = train.copy()
    rng = np.random.default_rng(1)
    for c in ("age", "income"):
        rows[c] = rows[c] + rng.normal(0, 0.002 * float(train[c].max() - train[c].min()), len(rows))
    return rows


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    from synthfactory.column_detection import detect_types
    from synthfactory_workers.tabular.copula import GaussianCopula

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    real = table(args.rows)
    fit, held = holdout.split(real, 0.2, seed=0)
    train, hold = real.iloc[fit], real.iloc[held]
    model = GaussianCopula(seed=0)
    model.fit(train, detect_types(train))
    for name, synthetic in (
        ("copula", model.sample(len(train), seed=1)),
        ("memoriser", memoriser(train)),
    ):
        base, base_s = timed(membership_inference, train, hold, synthetic)
        mia, mia_s = timed(membership_attacks, train, hold, synthetic)
        risks, risks_s = timed(anonymity_report, train, hold, synthetic)
        print(f"{name}: {len(train)} train, {len(hold)} holdout, {len(synthetic)} synthetic rows")
        print(f"  baseline distance attack: AUC {base['auc']:.3f} in {base_s:.2f} s")
        for attack in ("distance", "density", "classifier", "ensemble"):
            m = mia[attack]
            print(
                f"  {attack:10s} AUC {m['auc']:.3f}  TPR@1%FPR {m['tpr_at_1pct_fpr']:.3f}  "
                f"TPR@0.1%FPR {m['tpr_at_0_1pct_fpr']:.3f}"
            )
        print(f"  ensemble: {mia_s:.2f} s, ratio {mia_s / base_s:.1f}x the baseline")
        for risk in ("singling_out", "linkability", "inference"):
            r = risks[risk]
            print(f"  {risk:12s} risk {r['risk']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
        print(f"  risks: {risks_s:.2f} s, ratio {risks_s / base_s:.1f}x the baseline")


if __name__ == "__main__":
    main()
