"""Which columns the quality report scores as categorical: SDV's metadata detection (integer
codes are categorical), which SDMetrics' QualityReport reads, pinned by known answers; and
integer-coded columns with missing values.

A survey's integer codes read as numerical over-read quality.overall against SDMetrics (the
KS statistic never exceeds the total variation distance): each test says what the numerical
reading would give, so the old rule fails it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synthfactory.column_detection import integer_coded
from synthfactory.metrics.sampling import quotas
from synthfactory.metrics.tabular.quality import (
    quality_kind,
    quality_report,
    tv_complement,
)
from synthfactory.metrics.tabular.sharded import TabularSummary
from synthfactory.spec.model import MetricsConfig

NUM, CAT = "numerical", "categorical"


def codes(*counts: tuple[float, int]) -> pd.Series:
    """A column of ``value`` repeated ``times`` for each (value, times)."""
    return pd.Series([v for v, times in counts for _ in range(times)], dtype=float)


# -- detection ------------------------------------------------------------------------------
def test_integer_codes_are_categorical_by_sdvs_rule() -> None:
    # 60 rows: at most min(round(60 / 10), 10) = 6 distinct whole non-negative values
    assert quality_kind(pd.Series(np.arange(60) % 6)) == CAT
    assert quality_kind(pd.Series(np.arange(60) % 7)) == NUM  # 7 > 6
    assert quality_kind(pd.Series(np.arange(60) % 6 - 1)) == NUM  # a negative code
    assert quality_kind(pd.Series(np.arange(60) % 6 + 0.5)) == NUM  # not whole
    # never more than 10 codes, however many rows
    assert quality_kind(pd.Series(np.arange(10_000) % 10)) == CAT
    assert quality_kind(pd.Series(np.arange(10_000) % 11)) == NUM
    # few rows allow few codes: 6 rows round(0.6) = 1 code, 15 rows round(1.5) = 2
    assert quality_kind(pd.Series([0, 1] * 3)) == NUM
    assert quality_kind(pd.Series([0, 1] * 7 + [0])) == CAT
    # Python's round is half to even: 25 rows allow round(2.5) = 2 codes, 35 rows 4
    assert quality_kind(pd.Series(np.arange(25) % 3)) == NUM
    assert quality_kind(pd.Series(np.arange(35) % 3)) == CAT
    # strings, booleans and datetimes keep their kinds
    assert quality_kind(pd.Series(["a", "b"] * 10)) == CAT
    assert quality_kind(pd.Series(pd.date_range("2024-01-01", periods=60, freq="D"))) == NUM


def test_nulls_count_as_rows_but_not_as_codes() -> None:
    # 30 rows, 10 of them null, 3 codes: the threshold is min(round(30 / 10), 10) = 3 over
    # every row, nulls included: categorical. (Counting only the 20 non-null rows: 2 < 3,
    # numerical.)
    column = codes((1.0, 8), (2.0, 6), (3.0, 6), (math.nan, 10))
    assert len(column) == 30 and integer_coded(column)
    assert quality_kind(column) == CAT
    assert not integer_coded(pd.Series([math.nan] * 30))  # nothing to read: numerical
    assert quality_kind(pd.Series([math.nan] * 30)) == NUM


def test_declared_types_override_detection_and_name_the_fix() -> None:
    column = pd.Series(np.arange(60) % 3)
    assert quality_kind(column, "numerical") == NUM
    assert quality_kind(pd.Series(np.arange(60) * 1.5), "categorical") == CAT
    assert quality_kind(column, "boolean") == CAT
    assert quality_kind(column, "id") is None and quality_kind(column, "text") is None
    with pytest.raises(ValueError, match=r"generator\.column_types"):
        quality_kind(column, "ordinal")


def test_one_vocabulary_for_declared_detected_and_scored_types() -> None:
    """The spec's ``ColumnType`` is every type: what the synthesizers detect, what a spec
    declares and what the quality report maps to a scored kind."""
    from typing import get_args

    from synthfactory.column_detection import detect_types
    from synthfactory.metrics.tabular.quality import DECLARED
    from synthfactory.spec.generators.tabular import ColumnType

    assert set(DECLARED) == set(get_args(ColumnType))
    table = pd.DataFrame(
        {
            "user_id": range(40),
            "amount": np.linspace(0, 1, 40),
            "flag": [True, False] * 20,
            "when": pd.date_range("2024-01-01", periods=40),
            "plan": ["a", "b"] * 20,
            "note": [f"a long free-text note number {i} about this row" for i in range(40)],
        }
    )
    assert set(detect_types(table).values()) == set(get_args(ColumnType))


# -- scores ---------------------------------------------------------------------------------
def test_integer_codes_are_scored_by_tvcomplement() -> None:
    # real codes 1, 2, 3 a third each (60 rows: categorical); synthetic 1 and 3 half each.
    # TVComplement: 1 - 1/2 (1/6 + 1/3 + 1/6) = 2/3. As numerical, KSComplement: CDFs at
    # 1: 1/3 vs 1/2, at 2: 2/3 vs 1/2: D = 1/6 -> 5/6 (the over-read).
    real = pd.DataFrame({"code": codes((1, 20), (2, 20), (3, 20))})
    synthetic = pd.DataFrame({"code": codes((1, 30), (3, 30))})
    report = quality_report(real, synthetic)
    assert report["sdtypes"] == {"code": CAT}
    assert report["columns"]["code"] == {"metric": "TVComplement", "score": pytest.approx(2 / 3)}
    numerical = quality_report(real, synthetic, sdtypes={"code": "numerical"})
    assert numerical["columns"]["code"]["metric"] == "KSComplement"
    assert numerical["columns"]["code"]["score"] == pytest.approx(5 / 6)


def test_missing_values_in_integer_codes() -> None:
    # real 1 x10, 2 x10, null x10 (categorical: 2 codes <= 3); synthetic 1 x15, 2 x5, 3 x5,
    # null x5. TVComplement drops the nulls: real 1/2, 1/2 (3 gets 1e-6), synthetic .6, .2,
    # .2: 1 - 1/2 (.1 + .3 + .2) = 0.7. (Nulls a category: real 1/3 each, synthetic .5, 1/6,
    # 1/6, 1/6: 1 - 1/2 (1/6 + 1/6 + 1/6 + 1/6) = 2/3. As numerical, KS: CDFs at 1: .5 vs
    # .6, at 2: 1 vs .8: D = .2 -> 0.8.)
    real = codes((1, 10), (2, 10), (math.nan, 10))
    synthetic = codes((1, 15), (2, 5), (3, 5), (math.nan, 5))
    assert tv_complement(real, synthetic) == pytest.approx(0.7, abs=1e-6)
    report = quality_report(pd.DataFrame({"q": real}), pd.DataFrame({"q": synthetic}))
    assert report["columns"]["q"]["metric"] == "TVComplement"
    assert report["columns"]["q"]["score"] == pytest.approx(0.7, abs=1e-6)


def test_pairs_with_integer_codes_are_contingency_tables() -> None:
    # code (categorical) with x (numerical): ContingencySimilarity over x's 10 bins, the
    # code's nulls a category of their own. Real: code 1 with x 0..9, code 2 with x 10..19,
    # null with x 20..29 (x + 0.5: bins of width 2.9, the maximum alone in bin 11; whole
    # unique numbers would make x a primary key, an id SDMetrics does not score).
    x = np.arange(30) + 0.5
    code = codes((1, 10), (2, 10), (math.nan, 10))
    real = pd.DataFrame({"code": code, "x": x})
    report = quality_report(real, real.copy())
    pair = report["pairs"]["code | x"]
    assert pair["metric"] == "ContingencySimilarity" and pair["score"] == pytest.approx(1.0)
    # the nulls and code 1 swap places: rows 0..9 (bins 1..4) now null, 20..29 (bins 7..11)
    # code 1. Code 2's cells are unchanged (10 rows); no other cell is shared by the two
    # tables: TVD = 1/2 (20/30 + 20/30) = 2/3 -> 1/3. Read as numerical, the pair is a
    # CorrelationSimilarity over the rows where both are non-null.
    swapped = pd.DataFrame({"code": pd.concat([code[20:], code[10:20], code[:10]]).to_numpy()})
    swapped["x"] = x
    assert quality_report(real, swapped)["pairs"]["code | x"]["score"] == pytest.approx(1 / 3)
    as_numbers = quality_report(real, swapped, sdtypes={"code": "numerical"})
    assert as_numbers["pairs"]["code | x"]["metric"] == "CorrelationSimilarity"


# -- SDMetrics' own numbers -----------------------------------------------------------------
def survey_table(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Integer codes (region, a Likert answer, household size), one with 30 % nulls, an
    income and a group: the shape of the survey table that was over-read."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "region": rng.integers(1, 8, n),
            "likert": np.clip(np.round(3 + z + shift + rng.normal(0, 0.8, n)), 1, 5).astype(int),
            "household": np.clip(np.round(2.5 + 0.8 * z + rng.normal(0, 1.0, n)), 1, 6).astype(int),
            "income": np.round(30000 + 8000 * z + rng.normal(0, 4000, n), -2),
            "group": np.where(z + rng.normal(0, 0.5, n) > 0.3, "b", "a"),
        }
    )
    df["trust"] = df["likert"].astype(float)
    df.loc[rng.random(n) < 0.3, "trust"] = np.nan
    return df


def test_survey_table_matches_sdmetrics_quality_report() -> None:
    """The values SDMetrics 0.32's QualityReport gave on these two tables (run outside this
    repository; SDMetrics is not a dependency), with the metadata SDV's
    ``detect_from_dataframe`` rule gives (region, likert, household, trust categorical) and
    with every integer column declared numerical."""
    real, synthetic = survey_table(400, 0), survey_table(500, 1, shift=0.4)
    report = quality_report(real, synthetic)
    assert report["sdtypes"] == {
        "region": CAT,
        "likert": CAT,
        "household": CAT,
        "income": NUM,
        "group": CAT,
        "trust": CAT,
    }
    assert report["overall"] == pytest.approx(0.847902342238, abs=1e-9)
    numerical = {c: NUM for c in ("region", "likert", "household", "income", "trust")}
    declared = quality_report(real, synthetic, sdtypes=numerical)
    assert declared["overall"] == pytest.approx(0.916334002656, abs=1e-9)  # the over-read


def test_sharded_path_agrees_on_integer_codes() -> None:
    real, synthetic = survey_table(400, 0), survey_table(500, 1, shift=0.4)
    want = quality_report(real, synthetic)
    parts = np.array_split(np.arange(len(synthetic)), 3)
    plan = TabularSummary.plan(
        real,
        list(synthetic.columns),
        MetricsConfig.model_validate({}),
        quotas({i: len(p) for i, p in enumerate(parts)}, 10),
    )
    partials = [plan.partial(synthetic.iloc[p], i) for i, p in enumerate(parts)]
    got = plan.quality(plan.partial(real, -1), TabularSummary.merge(partials))
    assert got["sdtypes"] == want["sdtypes"]
    for name in ("overall", "column_shapes", "column_pair_trends"):
        assert got[name] == pytest.approx(want[name], abs=1e-9), name


def test_ids_are_not_scored_as_sdvs_detection_makes_them() -> None:
    from synthfactory.column_detection import id_columns, id_name

    assert id_name("user_id") and id_name("ID") and id_name("userId") and id_name("row id")
    assert not id_name("idle") and not id_name("paid") and not id_name("Valid")
    n = 40
    real = pd.DataFrame(
        {
            "x": np.linspace(0, 1, n),  # unique but not whole: not a key
            "respondent": np.arange(1, n + 1),  # the first key candidate: an id
            "serial": np.arange(100, 100 + n),  # a second candidate: numerical
            "code": [f"c{i}" for i in range(n)],  # a unique string after the first: scored
            "household_id": [i % 7 for i in range(n)],  # id by name, unique or not
        }
    )
    assert id_columns(real, list(real.columns)) == ["household_id", "respondent"]
    # an id-named unique column earlier in the table takes the key: respondent is scored
    first = real[["household_id", "respondent"]].assign(household_id=np.arange(n))
    assert id_columns(first, list(first.columns)) == ["household_id"]
    # a null, a repeat or a negative value: not a key
    for broken in (
        real["respondent"].astype(float).where(real.index > 0),
        real["respondent"].where(real.index > 0, 2),
        real["respondent"] - 5,
    ):
        assert "respondent" not in id_columns(real.assign(respondent=broken), ["respondent"])
    synthetic = real.assign(respondent=np.arange(1000, 1000 + n), serial=np.arange(n))
    report = quality_report(real, synthetic)
    assert set(report["columns"]) == {"x", "serial", "code"}
    assert report["columns"]["serial"] == {"metric": "KSComplement", "score": 0.0}
    declared = quality_report(real, synthetic, sdtypes={"respondent": "numerical"})
    assert declared["columns"]["respondent"]["score"] == 0.0  # declared: scored, disjoint


def test_personal_data_names_are_not_scored() -> None:
    from synthfactory.column_detection import id_columns, personal_name

    # a cleaned name containing one of SDV's references, or one of its words as a word
    for name in ("Email", "home_zipcode", "Latitude", "lon_longitude", "driver-license", "city"):
        assert personal_name(name), name
    for name in ("state", "home_state", "userCity", "SSN", "vin"):
        assert personal_name(name), name
    assert personal_name("ssn_count")  # ssn is a word of it
    # words that only contain one of the word-only references are not personal data
    for name in ("statement", "velocity", "income", "vintage", "ssns"):
        assert not personal_name(name), name
    n = 30
    real = pd.DataFrame(
        {
            "latitude": np.linspace(30, 40, n),
            "zip": np.arange(n) * 7 + 10_000,  # unique whole numbers: the primary key
            "city": ["a", "b", "c"] * 10,
            "x": np.linspace(0, 1, n),
        }
    )
    assert id_columns(real, list(real.columns)) == ["latitude", "city", "zip"]
    assert list(quality_report(real, real)["columns"]) == ["x"]
