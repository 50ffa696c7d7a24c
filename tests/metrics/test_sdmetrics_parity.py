"""Known answers, computed by hand from SDMetrics' published definitions (0.29), for the
tabular quality metrics and the QualityReport aggregation; and the sharded path agreeing.

Each comment gives the arithmetic; where another plausible rule (nulls as a category, bins
from the real data, nulls in a bin of their own, no thresholds) gives a different number, the
comment says which, so a wrong rule fails the assertion.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synthfactory.metrics.sampling import quotas
from synthfactory.metrics.tabular.quality import (
    bins,
    contingency_breakdown,
    contingency_similarity,
    correlation_breakdown,
    correlation_similarity,
    cramers_v,
    ks_complement,
    quality_report,
    tv_complement,
)
from synthfactory.metrics.tabular.sharded import TabularSummary
from synthfactory.spec.model import MetricsConfig

DAY = pd.Timestamp("2024-01-01")
NUM, CAT = "numerical", "categorical"


def days(*offsets: float | None, unit: str = "ns") -> pd.Series:
    values = [DAY + pd.Timedelta(days=d) if d is not None else pd.NaT for d in offsets]
    return pd.Series(pd.to_datetime(values)).astype(f"datetime64[{unit}]")


# -- KSComplement ---------------------------------------------------------------------------
def test_ks_complement_drops_nulls() -> None:
    # real {1,2,3} (null dropped), synthetic {2,3,4,5}; CDF gaps: at 1: 1/3, at 2: 2/3-1/4
    # = 5/12, at 3: 1-1/2 = 1/2, at 4: 1-3/4 = 1/4: D = 1/2 -> 0.5. (The null kept as a
    # value above every other: real CDF 1/4, 1/2, 3/4, 3/4 at 1..4: D = 1/4 -> 0.75.)
    assert ks_complement(pd.Series([1.0, 2.0, 3.0, None]), pd.Series([2.0, 3, 4, 5])) == 0.5
    # (kept nulls: real CDF at 1 would be 1/3 against 1: D = 2/3)
    assert ks_complement(pd.Series([None, None, 1.0]), pd.Series([1.0])) == 1.0


def test_ks_complement_datetimes_in_any_unit_constant_and_empty_columns() -> None:
    # the same dates as the case above (days 1,2,3 vs 2,3,4,5), the synthetic in seconds:
    # D = 1/2. Compared as raw integers (ns vs s) every synthetic value would lie below
    # every real one: D = 1.
    real, synthetic = days(1, 2, 3, None), days(2, 3, 4, 5, unit="s")
    assert ks_complement(real, synthetic) == 0.5
    # constant real column: real CDF jumps 0 -> 1 at 5; synthetic {5,5,6,6} is 1/2 there
    assert ks_complement(pd.Series([5.0] * 4), pd.Series([5.0, 5, 6, 6])) == 0.5
    # no values on one side: NaN (and the column does not count, see the report tests)
    assert math.isnan(ks_complement(pd.Series([None, None], dtype=float), pd.Series([1.0])))


def test_ks_complement_rounds_to_14_decimals() -> None:
    # 0.1 + 0.2 = 0.30000000000000004 != 0.3; rounded to 14 decimals they are equal: D = 0
    # (unrounded, every real value is above every synthetic one: D = 1, score 0).
    assert ks_complement(pd.Series([0.1 + 0.2] * 3), pd.Series([0.3] * 3)) == 1.0


# -- TVComplement ---------------------------------------------------------------------------
def test_tv_complement_drops_nulls_and_regularises_unseen_categories() -> None:
    # nulls dropped: real a 2/3, b 1/3; synthetic a 1/4, b 1/2, c 1/4 (c gets 1e-6 real count)
    # TVD = 1/2 (|1/4-2/3| + |1/2-1/3| + 1/4) = 1/2 (5/12 + 2/12 + 3/12) = 5/12 -> 7/12.
    # (Null as a category: real a 1/2, b 1/4, null 1/4: TVD 1/2 -> 0.5.)
    real = pd.Series(["a", "a", "b", None])
    synthetic = pd.Series(["a", "b", "b", "c"])
    assert tv_complement(real, synthetic) == pytest.approx(7 / 12, abs=1e-6)
    assert tv_complement(real, synthetic) != pytest.approx(7 / 12, abs=1e-12)  # the 1e-6
    assert math.isnan(tv_complement(pd.Series([None, None]), synthetic))


def test_tv_complement_booleans_and_rare_categories() -> None:
    # booleans with a null: real T 2/3, F 1/3; synthetic T 1/4, F 3/4: TVD 5/12 -> 7/12
    real = pd.Series([True, True, False, None], dtype=object)
    synthetic = pd.Series([True, False, False, False])
    assert tv_complement(real, synthetic) == pytest.approx(7 / 12)
    # a rare category (1 of 10) the synthetic data never makes: real a .9 z .1, synthetic
    # a 1: TVD = 1/2 (.1 + .1) = .1 -> 0.9
    assert tv_complement(pd.Series(["a"] * 9 + ["z"]), pd.Series(["a"] * 5)) == pytest.approx(0.9)


# -- CorrelationSimilarity ------------------------------------------------------------------
def test_correlation_similarity_pairwise_complete_rows() -> None:
    # real rows with a null anywhere are dropped: a = 1..4, b = 2,4,6,9.
    # deviations a: -1.5,-.5,.5,1.5 (sum sq 5); b: -3.25,-1.25,.75,3.75 (sum sq 26.75);
    # cross 4.875+.625+.375+5.625 = 11.5: r = 11.5/sqrt(5*26.75). Synthetic r = -1.
    # score = 1 - |r - (-1)|/2 = (1 - r)/2. (Keeping row 5 with b = 100 changes r.)
    real = pd.DataFrame({"a": [1, 2, 3, 4, None], "b": [2, 4, 6, 9, 100]})
    synthetic = pd.DataFrame({"a": [1, 2, 3, 4], "b": [4, 3, 2, 1]})
    r = 11.5 / math.sqrt(5 * 26.75)
    score, real_r, synthetic_r = correlation_breakdown(real, synthetic, "a", "b")
    assert real_r == pytest.approx(r) and synthetic_r == pytest.approx(-1.0)
    assert score == pytest.approx((1 - r) / 2)


def test_correlation_similarity_undefined_for_constant_columns_and_datetimes_work() -> None:
    real = pd.DataFrame({"a": [1.0, 2, 3], "c": [7.0, 7, 7]})
    assert math.isnan(correlation_similarity(real, real, "a", "c"))
    # a datetime with its day number: r = 1 on both sides (synthetic in seconds): score 1
    real = pd.DataFrame({"t": days(0, 1, 3), "x": [0.0, 1, 3]})
    synthetic = pd.DataFrame({"t": days(0, 2, 5, unit="s"), "x": [0.0, 2, 5]})
    assert correlation_similarity(real, synthetic, "t", "x") == pytest.approx(1.0)


# -- ContingencySimilarity and its binning --------------------------------------------------
def test_bins_are_equal_width_on_the_columns_own_range_and_max_shares_nulls_bin() -> None:
    # 0..10 in 10 bins of width 1: 0 -> 1, 5 -> 6, 10 (the maximum) -> 11, null -> 11
    assert bins(pd.Series([0.0, 10, None, 5])).tolist() == [1, 11, 11, 6]
    # constant column: edges v-0.5 .. v+0.5, v is the 6th edge: bin 6; null -> 11
    assert bins(pd.Series([7.0, 7, None])).tolist() == [6, 6, 11]
    # datetimes as nanoseconds: days 0, 1, 2 -> edges every 0.2 days: 1, 6, 11
    assert bins(days(0, 1, 2)).tolist() == [1, 6, 11]


def test_contingency_similarity_bins_each_table_on_its_own_range() -> None:
    # real x 1..4: edges 1, 1.3, ..., 4: 1 -> 1, 2 -> 4, 3 -> 7, 4 -> 11; cells (1,a) (4,a)
    # (7,b) (11,b) 1/4 each. Synthetic x 1,1,1,4 -> 1,1,1,11: (1,a) 1/2 (1,b) 1/4 (11,b) 1/4.
    # TVD = 1/2 (1/4 + 1/4 + 1/4 + 1/4 + 0) = 1/2 -> 0.5
    kinds = {"x": NUM, "g": CAT}
    real = pd.DataFrame({"x": [1.0, 2, 3, 4], "g": ["a", "a", "b", "b"]})
    synthetic = pd.DataFrame({"x": [1.0, 1, 1, 4], "g": ["a", "b", "a", "b"]})
    assert contingency_similarity(real, synthetic, "x", "g", kinds) == pytest.approx(0.5)
    # shifting the synthetic x by 100 changes nothing: its bins follow its own range.
    # (Bins of the real range would put every shifted value in the top bin: score 1/4.)
    shifted = real.assign(x=real["x"] + 100)
    assert contingency_similarity(real, shifted, "x", "g", kinds) == pytest.approx(1.0)


def test_contingency_similarity_nulls_and_the_maximum_share_a_bin() -> None:
    # real x 0, 10, null, 5 -> bins 1, 11, 11, 6; synthetic x 0, 10, 10, 5 -> 1, 11, 11, 6:
    # the same table, score 1. (A bin of its own for nulls: real (null,b) 1/4 vs synthetic
    # (11,b) 1/2 -> TVD 1/4, score 0.75.)
    kinds = {"x": NUM, "g": CAT}
    real = pd.DataFrame({"x": [0.0, 10, None, 5], "g": ["a", "b", "b", "a"]})
    synthetic = pd.DataFrame({"x": [0.0, 10, 10, 5], "g": ["a", "b", "b", "a"]})
    assert contingency_similarity(real, synthetic, "x", "g", kinds) == pytest.approx(1.0)


def test_contingency_similarity_discrete_nulls_are_a_category() -> None:
    # real (a,u) (a,null) (b,u) (null,u) 1/4 each; synthetic (a,u) 1/2 (b,u) 1/4 (null,u) 1/4
    # TVD = 1/2 (1/4 + 1/4) = 1/4 -> 0.75 (rows with nulls dropped: real (a,u) (b,u) 1/2 each
    # vs synthetic (a,u) 2/3 (b,u) 1/3 -> TVD 1/6, score 5/6).
    kinds = {"p": CAT, "q": CAT}
    real = pd.DataFrame({"p": ["a", "a", "b", None], "q": ["u", None, "u", "u"]})
    synthetic = pd.DataFrame({"p": ["a", "a", "b", None], "q": ["u", "u", "u", "u"]})
    assert contingency_similarity(real, synthetic, "p", "q", kinds) == pytest.approx(0.75)


def test_cramers_v_by_hand() -> None:
    # [[3,1],[1,3]]: n 8, every expected count 2, chi2 = 4 * 1/2 = 2: V = sqrt(2/8/1) = 1/2
    table = {("a", "u"): 3, ("a", "v"): 1, ("b", "u"): 1, ("b", "v"): 3}
    assert cramers_v(table) == pytest.approx(0.5)
    assert math.isnan(cramers_v({("a", "u"): 3, ("a", "v"): 1}))  # one row category
    # independent 2x2: V = 0
    real = pd.DataFrame({"p": ["a", "a", "b", "b"], "q": ["u", "v", "u", "v"]})
    _, v = contingency_breakdown(real, real, "p", "q", {"p": CAT, "q": CAT})
    assert v == pytest.approx(0.0)


# -- the report: which pairs count, property and overall means ------------------------------
def small_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    real = pd.DataFrame({"x": [0.0, 10, None, 5], "g": ["a", "b", "b", "a"], "c": [7.0, 7, 7, 7]})
    synthetic = pd.DataFrame(
        {"x": [0.0, 10, 10, 10], "g": ["a", "b", "b", "b"], "c": [7.0, 7, 7, 8]}
    )
    return real, synthetic


def test_quality_report_by_hand() -> None:
    # Column Shapes:
    #   x KS: real {0,5,10}, synthetic {0,10,10,10}: gaps 1/3-1/4, 2/3-1/4 = 5/12, 0 -> 7/12
    #   c KS: real all 7, synthetic 3/4 at 7 -> D 1/4 -> 3/4
    #   g TV: a 1/2 b 1/2 vs a 1/4 b 3/4 -> 3/4
    #   mean = (7/12 + 3/4 + 3/4) / 3 = 25/36
    # Column Pair Trends:
    #   x|g: real bins (1,a) 1/4 (11,b) 1/2 (6,a) 1/4, Cramer's V 1 (> 0.3: counts);
    #        synthetic (1,a) 1/4 (11,b) 3/4: TVD 1/4 -> 3/4
    #   x|c: c constant -> correlation undefined: NaN, skipped
    #   g|c: real c is a single bin -> Cramer's V undefined: does not count
    #   mean = 3/4
    # Overall = (25/36 + 27/36) / 2 = 13/18
    real, synthetic = small_tables()
    report = quality_report(real, synthetic)
    assert report["columns"]["x"]["score"] == pytest.approx(7 / 12)
    assert report["columns"]["c"]["score"] == pytest.approx(3 / 4)
    assert report["columns"]["g"]["score"] == pytest.approx(3 / 4)
    assert report["column_shapes"] == pytest.approx(25 / 36)
    assert report["pairs"]["x | g"]["score"] == pytest.approx(3 / 4)
    assert report["pairs"]["x | g"]["real_association"] == pytest.approx(1.0)
    assert math.isnan(report["pairs"]["x | c"]["score"])
    assert report["pairs"]["g | c"]["meets_threshold"] is False
    assert report["column_pair_trends"] == pytest.approx(3 / 4)
    assert report["overall"] == pytest.approx(13 / 18)


def test_quality_report_without_thresholds_scores_every_pair() -> None:
    # as above, g|c now counts: real c in bin 6 -> (6,a) 1/2 (6,b) 1/2; synthetic c 7,7,7,8
    # -> bins 1,1,1,11: (1,a) 1/4 (1,b) 1/2 (11,b) 1/4: nothing shared, TVD 1 -> 0.
    # Pair Trends = (3/4 + 0) / 2 = 3/8; Overall = (25/36 + 3/8) / 2 = 77/144
    real, synthetic = small_tables()
    report = quality_report(
        real, synthetic, real_correlation_threshold=0, real_association_threshold=0
    )
    assert report["pairs"]["g | c"]["score"] == pytest.approx(0.0)
    assert report["column_pair_trends"] == pytest.approx(3 / 8)
    assert report["overall"] == pytest.approx(77 / 144)


def test_weak_real_relationships_do_not_count() -> None:
    # p|q independent in the real data (V = 0 <= 0.3), a|b with r = 0 (|r| <= 0.5): neither
    # counts, whatever the synthetic data does; Pair Trends has nothing to average (None)
    # and Overall is Column Shapes alone.
    real = pd.DataFrame({"p": ["a", "a", "b", "b"], "q": ["u", "v", "u", "v"]})
    synthetic = pd.DataFrame({"p": ["a", "a", "b", "b"], "q": ["u", "u", "v", "v"]})
    report = quality_report(real, synthetic)
    assert report["pairs"]["p | q"]["score"] == pytest.approx(0.5)  # kept, not counted
    assert report["pairs"]["p | q"]["meets_threshold"] is False
    assert report["column_pair_trends"] is None
    assert report["overall"] == report["column_shapes"] == pytest.approx(1.0)
    real = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, -1, -1, 1]})  # r = 0
    synthetic = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, 2, 3, 4]})
    report = quality_report(real, synthetic)
    assert report["pairs"]["a | b"]["real_correlation"] == pytest.approx(0.0)
    assert report["pairs"]["a | b"]["score"] == pytest.approx(0.5)
    assert report["column_pair_trends"] is None


def test_datetime_and_boolean_pair() -> None:
    # real t days 0, 1, 2, null -> bins 1, 6, 11, 11; flag T, T, F, F:
    # (1,T) 1/4 (6,T) 1/4 (11,F) 1/2, V = 1. Synthetic t (in seconds) days 0, 0, 2, 2 ->
    # 1, 1, 11, 11; flag T, F, F, F: (1,T) 1/4 (1,F) 1/4 (11,F) 1/2. TVD = 1/2 (1/4 + 1/4)
    # = 1/4 -> 3/4. Shapes: t KS real {0,1,2} vs {0,0,2,2}: gaps 1/3-1/2, 2/3-1/2 -> D 1/6
    # -> 5/6; flag TV: T 1/2 vs 1/4 -> 3/4. Overall = ((5/6 + 3/4)/2 + 3/4)/2 = 37/48.
    real = pd.DataFrame({"t": days(0, 1, 2, None), "flag": [True, True, False, False]})
    synthetic = pd.DataFrame({"t": days(0, 0, 2, 2, unit="s"), "flag": [True, False, False, False]})
    report = quality_report(real, synthetic)
    assert report["pairs"]["t | flag"]["score"] == pytest.approx(3 / 4)
    assert report["columns"]["t"]["score"] == pytest.approx(5 / 6)
    assert report["columns"]["flag"]["score"] == pytest.approx(3 / 4)
    assert report["overall"] == pytest.approx(37 / 48)


# -- the sharded path gives the same numbers ------------------------------------------------
def sharded_quality(real: pd.DataFrame, synthetic: pd.DataFrame, shards: int) -> dict[str, object]:
    cfg = MetricsConfig()
    parts = np.array_split(np.arange(len(synthetic)), shards)
    plan = TabularSummary.plan(
        real, list(synthetic.columns), cfg, quotas({i: len(p) for i, p in enumerate(parts)}, 10)
    )
    partials = [plan.partial(synthetic.iloc[p], i) for i, p in enumerate(parts)]
    return plan.quality(plan.partial(real, -1), TabularSummary.merge(partials))


def awkward(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Nulls, a constant column, datetimes, booleans, a rare category, integer ties."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": x + shift,
            "k": rng.integers(0, 7, n) + (x > 0.5) * 3,
            "const": np.full(n, 4.0),
            "when": DAY + pd.to_timedelta(rng.integers(0, 90, n) + (x > 0) * 60, "D"),
            "flag": pd.Series(x + rng.normal(scale=0.5, size=n) > 0, dtype=object),
            "group": np.where(x > 0.8, "hi", np.where(rng.random(n) < 0.02, "rare", "lo")),
        }
    )
    df.loc[rng.random(n) < 0.1, "x"] = np.nan
    df.loc[rng.random(n) < 0.05, "flag"] = None
    df.loc[rng.random(n) < 0.05, "when"] = pd.NaT
    return df


@pytest.mark.parametrize(
    "tables",
    [small_tables(), (awkward(800, 0), awkward(1300, 1, shift=0.7))],
    ids=["by-hand", "awkward"],
)
@pytest.mark.parametrize("shards", [1, 3])
def test_sharded_path_agrees_with_the_whole_table(
    tables: tuple[pd.DataFrame, pd.DataFrame], shards: int
) -> None:
    real, synthetic = tables
    want = quality_report(real, synthetic)
    got = sharded_quality(real, synthetic, shards)
    for name in ("columns", "pairs"):
        assert got[name].keys() == want[name].keys()  # type: ignore[attr-defined]
        for key, value in want[name].items():
            mine = got[name][key]  # type: ignore[index]
            assert mine["metric"] == value["metric"], key
            assert mine["score"] == pytest.approx(value["score"], abs=1e-9, nan_ok=True), key
            assert mine.get("meets_threshold") == value.get("meets_threshold"), key
    for name in ("overall", "column_shapes", "column_pair_trends"):
        assert got[name] == pytest.approx(want[name], abs=1e-9), name
    if len(real) > 10:  # the thresholds are exercised both ways
        assert want["pairs"]["k | group"]["meets_threshold"]
        assert not want["pairs"]["const | group"]["meets_threshold"]
        assert sum(v["meets_threshold"] for v in want["pairs"].values()) >= 3
