"""Known-answer tests for the tabular metrics (SDMetrics' definitions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthfactory.metrics.gates import evaluate, parse
from synthfactory.metrics.privacy.closeness import exact_copy_rate, privacy_report
from synthfactory.metrics.tabular.quality import (
    contingency_similarity,
    correlation_similarity,
    ks_complement,
    quality_report,
    tv_complement,
)


def table(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "y": 2 * x + rng.normal(scale=0.3, size=n),
            "group": np.where(x > 0, "a", "b"),
            "flag": rng.random(n) < 0.3,
        }
    )


def test_ks_and_tv_complement_against_hand_computed_values() -> None:
    real = pd.Series([1.0, 2.0, 3.0, 4.0])
    synthetic = pd.Series([3.0, 4.0, 5.0, 6.0])
    # empirical CDFs differ by at most 0.5 (at x in [2, 3)): KS D = 0.5
    assert ks_complement(real, synthetic) == pytest.approx(0.5)
    r = pd.Series(["a", "a", "b", "c"])  # a .5, b .25, c .25
    s = pd.Series(["a", "b", "b", "b"])  # a .25, b .75
    # TVD = 1/2 (|.5-.25| + |.25-.75| + |.25-0|) = 0.5
    assert tv_complement(r, s) == pytest.approx(0.5)
    # SDMetrics drops nulls before TVComplement: both sides are all "a"
    assert tv_complement(pd.Series(["a", None]), pd.Series(["a", "a"])) == pytest.approx(1.0)


def test_pair_metrics_against_hand_computed_values() -> None:
    real = pd.DataFrame({"a": [1, 2, 3, 4], "b": [1, 2, 3, 4]})  # r = 1
    synthetic = pd.DataFrame({"a": [1, 2, 3, 4], "b": [4, 3, 2, 1]})  # r = -1
    assert correlation_similarity(real, synthetic, "a", "b") == pytest.approx(0.0)
    real = pd.DataFrame({"p": ["x", "x", "y", "y"], "q": ["u", "v", "u", "v"]})
    same = contingency_similarity(real, real, "p", "q", {"p": "categorical", "q": "categorical"})
    assert same == pytest.approx(1.0)
    other = pd.DataFrame({"p": ["x", "x", "x", "x"], "q": ["u", "u", "u", "u"]})
    # real cells .25 each; synthetic all in (x,u): TVD = 1/2 (.75 + .25*3) = .75
    assert contingency_similarity(
        real, other, "p", "q", {"p": "categorical", "q": "categorical"}
    ) == pytest.approx(0.25)


def test_identical_data_scores_one_and_shuffled_columns_lose_pair_trends() -> None:
    real = table()
    same = quality_report(real, real.copy())
    assert same["column_shapes"] == pytest.approx(1.0)
    assert same["column_pair_trends"] == pytest.approx(1.0)
    assert same["overall"] == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    shuffled = real.apply(
        lambda c: c.sample(frac=1, random_state=rng.integers(1e9)).reset_index(drop=True)
    )
    report = quality_report(real, shuffled)
    assert report["column_shapes"] == pytest.approx(1.0)  # marginals unchanged
    assert report["column_pair_trends"] < 0.8  # relationships destroyed
    assert report["pairs"]["x | y"]["metric"] == "CorrelationSimilarity"
    assert report["pairs"]["x | group"]["metric"] == "ContingencySimilarity"


def test_pair_sampling_is_seeded_and_stated() -> None:
    real = pd.DataFrame(
        np.random.default_rng(0).normal(size=(200, 12)), columns=[f"c{i}" for i in range(12)]
    )
    a = quality_report(real, real, max_pairs=10, seed=3)
    b = quality_report(real, real, max_pairs=10, seed=3)
    assert a["pairs"].keys() == b["pairs"].keys() and len(a["pairs"]) == 10
    assert a["pairs_sampled"] == {"sampled": True, "pairs": 10, "seed": 3}


def test_planted_exact_copies_drive_the_exact_copy_rate() -> None:
    real = table(500)
    train, holdout = real.iloc[:400], real.iloc[400:]
    synthetic = table(500, seed=9)
    assert exact_copy_rate(train, synthetic) == 0.0
    planted = pd.concat([synthetic.iloc[:400], train.iloc[:100]], ignore_index=True)
    assert exact_copy_rate(train, planted) == pytest.approx(0.2)
    report = privacy_report(train, holdout, planted, sample=500)
    assert report["exact_copy_rate"] == pytest.approx(0.2)
    assert report["dcr_p05"] == pytest.approx(0.0)
    fresh = privacy_report(train, holdout, synthetic, sample=500)
    assert 0.7 < fresh["dcr_ratio"] < 1.3, fresh  # independent draws: as close as unseen rows
    assert fresh["dcr_overfitting_protection"] > 0.8, fresh
    assert abs(fresh["dcr_closer_to_train_share"] - fresh["dcr_closer_to_train_expected"]) < 0.1
    copied = privacy_report(train, holdout, train.copy(), sample=500)
    assert copied["dcr_median"] == pytest.approx(0.0)
    assert copied["dcr_overfitting_protection"] == pytest.approx(0.0)
    assert copied["dcr_ratio"] < 0.8  # a quarter of the copies sit in its 100-row sample
    assert copied["membership_inference_auc"] > 0.95


def test_gates_parse_and_evaluate() -> None:
    assert parse("quality.overall", ">= 0.8") == (">=", 0.8)
    with pytest.raises(ValueError, match="not a condition"):
        parse("quality.overall", "at least 0.8")
    report = {
        "quality": {"overall": 0.75},
        "privacy": {"exact_copy_rate": 0.0},
        "bias": {"not_applicable": "no metrics.sensitive_columns declared"},
    }
    results = evaluate(
        {
            "quality.overall": ">= 0.8",
            "privacy.exact_copy_rate": "== 0",
            "bias.demographic_parity_difference": "<= 0.1",
        },
        report,
    )
    assert [r["passed"] for r in results] == [False, True, False]
    assert results[2]["reason"] == "not applicable: no metrics.sensitive_columns declared"
    assert results[2]["not_applicable"] is True
