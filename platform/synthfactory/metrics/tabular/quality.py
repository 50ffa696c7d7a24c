"""Tabular quality with SDMetrics' names and definitions, so the numbers compare with its
``QualityReport`` (as of SDMetrics 0.29; sources read: ``sdmetrics/single_column/statistical/
kscomplement.py``, ``tv_complement.py``, ``sdmetrics/column_pairs/statistical/
correlation_similarity.py``, ``contingency_similarity.py``, ``sdmetrics/reports/single_table/
_properties/{base,column_shapes,column_pair_trends}.py``, ``sdmetrics/reports/utils.py``).

Column Shapes (numerical/datetime columns: KSComplement; categorical/boolean: TVComplement):

- KSComplement = 1 - D, D the two-sample Kolmogorov-Smirnov statistic. Nulls are dropped,
  datetimes become integer nanoseconds, values are rounded to 14 decimals; no values on
  either side: NaN (the column does not count). A constant column is scored as any other.
- TVComplement = 1 - 1/2 * sum_k |S_k - R_k| over the categories. Nulls are dropped (not a
  category) and frequencies are over non-null values; a category only the synthetic data has
  gets a count of 1e-6 in the real data (SDMetrics' regularisation). No non-null values: NaN.

Column Pair Trends, over every pair of scored columns (``itertools.combinations`` order):

- both continuous: CorrelationSimilarity = 1 - |r_S - r_R| / 2, Pearson's r over the rows
  where both are non-null. Undefined r (a constant column, fewer than two rows): NaN.
- otherwise ContingencySimilarity = 1 - 1/2 * sum_ab |S_ab - R_ab| over the joint frequency
  table; null is a category of its own and frequencies are over all rows. A continuous column
  in a pair with a discrete one is first binned: ``np.histogram_bin_edges`` (10 equal-width
  bins from the minimum to the maximum; min == max: [v - 0.5, v + 0.5]) computed on *each
  dataset's own* non-null values, then ``np.digitize``. So the real and synthetic data are
  binned separately, and digitize puts both the column maximum and the nulls in bin 11
  (one category). We reproduce both, since they change the numbers.
- Only pairs whose relationship in the real data is strong enough count: |r_R| > 0.5, or
  Cramer's V of the real contingency table (same bins, nulls a category, no continuity
  correction) > 0.3; a real table with a single row or column category does not count.
  These are the QualityReport's defaults (``real_correlation_threshold``,
  ``real_association_threshold``); 0 scores every pair, as SDMetrics did before 0.27.

Each property is the mean of its counted, non-NaN scores; Overall is the NaN-skipping mean of
the two properties (a property with nothing to score is None and Overall is the other one).

Sdtypes: SDMetrics reads them from the metadata it is given, and scores an integer column
as numerical unless the metadata says categorical. Its users' metadata comes from SDV's
``Metadata.detect_from_dataframe``, which (more than 5 rows) calls a numeric column
categorical when its non-null values are whole, non-negative and take at most
``min(round(rows / 10), 10)`` distinct values (rows counting nulls; Python's ``round``,
half to even); a survey's integer codes (regions 1..9, Likert 1..5, household sizes) are
categorical by that rule, so TVComplement and ContingencySimilarity score them, not
KSComplement and CorrelationSimilarity (KS never exceeds the total variation distance, so
reading them as numerical over-reads). We apply the same rule to the real table
(``quality_kind``; SDV's detection rules are in ``synthfactory.column_detection``).
Its ids are not scored either (``id_columns``): a column with an
``id`` word in its name, and the first column, in table order, that could be a primary key
(unique, no nulls, whole non-negative numbers or strings); nor are columns whose name
says they hold personal data (``personal_name``: email, zipcode, latitude, city, ...,
SDV's list). ``sdtypes`` (the spec's ``column_types``) overrides all of it as metadata
would: numerical/datetime are continuous, categorical/boolean discrete, id/text not scored.

Where we depart, deliberately:

- Other sdtypes are inferred from dtypes (``columns.kind``), not by SDV's detection:
  dates written as strings are categorical here (SDV parses them as datetimes).
- Pairs below the threshold keep their score in ``pairs`` (flagged ``meets_threshold:
  False``); SDMetrics blanks it. Neither counts it in the property score.
- SDMetrics computes ContingencySimilarity on a random, unseeded sample of 50,000 rows of
  each table when either is larger; we use every row (deterministic, and what the sample
  estimates).
- Above ``max_pairs`` pairs we score a seeded sample of pairs (stated in ``pairs_sampled``);
  SDMetrics scores all of them.
- Datetimes in different units, or zoned, are all taken to UTC nanoseconds first.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from synthfactory.column_detection import id_columns, integer_coded
from synthfactory.metrics.tabular.sdtypes import (
    CATEGORICAL,
    NUMERIC,
    as_float,
    kind,
    numeric_values,
)

if TYPE_CHECKING:
    import pandas as pd

#: the QualityReport's defaults: only pairs related this strongly in the real data count
REAL_CORRELATION_THRESHOLD = 0.5
REAL_ASSOCIATION_THRESHOLD = 0.3
#: KSComplement rounds values to ``sys.float_info.dig - 1`` decimals
MAX_DECIMALS = 14
#: ``np.histogram_bin_edges``' default: 10 bins
BINS = 10
#: nulls as a category of a discrete column in a contingency table
NULL = "<null>"
#: the regularising count SDMetrics gives real categories seen only in the synthetic data
UNSEEN = 1e-6
#: metadata sdtypes (the spec's ``column_types``) as the two scored kinds; None: not scored
DECLARED: dict[str, str | None] = {
    "numerical": NUMERIC,
    "datetime": NUMERIC,
    "categorical": CATEGORICAL,
    "boolean": CATEGORICAL,
    "id": None,
    "text": None,
}


# -- sdtypes --------------------------------------------------------------------------------
def quality_kind(series: pd.Series, declared: str | None = None) -> str | None:
    """The kind a real column is scored as: the declared sdtype when given (see
    ``DECLARED``), else ``columns.kind`` with integer codes (``integer_coded``) categorical."""
    if declared is not None:
        if declared not in DECLARED:
            raise ValueError(
                f"column type {declared!r} is not one of {sorted(DECLARED)}: "
                "declare it as one of those in generator.column_types"
            )
        return DECLARED[declared]
    found = kind(series)
    if found == NUMERIC and integer_coded(series):
        return CATEGORICAL
    return found


def quality_kinds(
    real: pd.DataFrame, columns: list[str], sdtypes: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Scored columns and their kinds (columns no metric applies to left out, ids among
    them: ``id_columns``)."""
    declared = dict(sdtypes or {})
    for c in id_columns(real, [c for c in columns if c not in declared]):
        declared[c] = "id"
    return {c: k for c in columns if (k := quality_kind(real[c], declared.get(c))) is not None}


# -- column shapes --------------------------------------------------------------------------
def ks_statistic(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Two-sample KS D: the largest gap between the two empirical CDFs."""
    r, s = np.sort(real), np.sort(synthetic)
    points = np.concatenate([r, s])
    r_cdf = np.searchsorted(r, points, "right") / len(r)
    s_cdf = np.searchsorted(s, points, "right") / len(s)
    return float(np.abs(r_cdf - s_cdf).max())


def ks_complement(real: pd.Series, synthetic: pd.Series) -> float:
    r = np.round(numeric_values(real).to_numpy(), MAX_DECIMALS)
    s = np.round(numeric_values(synthetic).to_numpy(), MAX_DECIMALS)
    if len(r) == 0 or len(s) == 0:
        return float("nan")
    return 1.0 - ks_statistic(r, s)


def tv_from_counts(real: Mapping[Any, float], synthetic: Mapping[Any, float]) -> float:
    """TVComplement from category counts (nulls already left out)."""
    rn, sn = sum(real.values()), sum(synthetic.values())
    if not rn or not sn:
        return float("nan")
    real = dict(real)
    for key in synthetic:
        if key not in real:
            real[key] = UNSEEN
            rn += UNSEEN
    return 1.0 - 0.5 * float(sum(abs(synthetic.get(k, 0) / sn - v / rn) for k, v in real.items()))


def category_counts(series: pd.Series) -> dict[Any, int]:
    return {k: int(v) for k, v in series.dropna().value_counts(sort=False).items()}


def tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    return tv_from_counts(category_counts(real), category_counts(synthetic))


# -- column pair trends ---------------------------------------------------------------------
def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if len(x) < 2:
        return float("nan")
    x, y = x - x.mean(), y - y.mean()
    sxx, syy = float((x * x).sum()), float((y * y).sum())
    if sxx == 0 or syy == 0:
        return float("nan")
    return float(np.clip((x * y).sum() / np.sqrt(sxx * syy), -1.0, 1.0))


def correlation_breakdown(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    a: str,
    b: str,
    method: Literal["pearson", "spearman"] = "pearson",
) -> tuple[float, float, float]:
    """(score, real r, synthetic r) for a pair of continuous columns."""

    def corr(df: pd.DataFrame) -> float:
        x, y = as_float(df[a]), as_float(df[b])
        if method == "spearman":
            both = x.notna() & y.notna()
            x, y = x[both].rank(), y[both].rank()
        return _pearson(x.to_numpy(), y.to_numpy())

    r, s = corr(real), corr(synthetic)
    return similarity_of_correlations(r, s), r, s


def similarity_of_correlations(r: float, s: float) -> float:
    if np.isnan(r) or np.isnan(s):
        return float("nan")
    return 1.0 - abs(s - r) / 2.0


def correlation_similarity(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    a: str,
    b: str,
    method: Literal["pearson", "spearman"] = "pearson",
) -> float:
    return correlation_breakdown(real, synthetic, a, b, method)[0]


def bins(series: pd.Series) -> np.ndarray:
    """A continuous column as the QualityReport bins it: 10 equal-width bins of its own
    non-null range, ``np.digitize`` labels 1..11 (the maximum and the nulls are both 11)."""
    x = as_float(series).to_numpy()
    edges = np.histogram_bin_edges(x[~np.isnan(x)], bins=BINS)
    return np.digitize(x, edges)


def pair_labels(series: pd.Series, continuous: bool) -> list[Hashable]:
    """A column as contingency-table labels: bins for continuous, values (null: NULL)."""
    if continuous:
        return [int(v) for v in bins(series)]
    return list(series.astype(object).where(series.notna(), NULL))


def joint_counts(x: list[Hashable], y: list[Hashable]) -> dict[tuple[Hashable, Hashable], int]:
    import pandas as pd

    if not x:
        return {}
    counts = pd.DataFrame({"x": x, "y": y}, dtype=object).value_counts(sort=False)
    index = counts.index
    pairs = zip(
        index.get_level_values(0), index.get_level_values(1), counts.to_numpy(), strict=True
    )
    return {(a, b): int(n) for a, b, n in pairs}


def cramers_v(counts: Mapping[tuple[Hashable, Hashable], float]) -> float:
    """Cramer's V of a contingency table (no continuity correction); NaN when the table has
    a single row or column category."""
    xs: dict[Hashable, int] = {}
    ys: dict[Hashable, int] = {}
    for x, y in counts:
        xs.setdefault(x, len(xs))
        ys.setdefault(y, len(ys))
    table = np.zeros((len(xs), len(ys)))
    for (x, y), n in counts.items():
        table[xs[x], ys[y]] += n
    total = table.sum()
    if total == 0 or min(table.shape) < 2:
        return float("nan")
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / total / (min(table.shape) - 1)))


def contingency_from_counts(
    real: Mapping[tuple[Hashable, Hashable], float],
    synthetic: Mapping[tuple[Hashable, Hashable], float],
) -> float:
    rn, sn = sum(real.values()), sum(synthetic.values())
    if not rn or not sn:
        return float("nan")
    keys = set(real) | set(synthetic)
    return 1.0 - 0.5 * float(sum(abs(real.get(k, 0) / rn - synthetic.get(k, 0) / sn) for k in keys))


def contingency_breakdown(
    real: pd.DataFrame, synthetic: pd.DataFrame, a: str, b: str, kinds: dict[str, str]
) -> tuple[float, float]:
    """(score, Cramer's V of the real table) for a pair with a discrete column."""
    tables = []
    for df in (real, synthetic):
        la, lb = (pair_labels(df[c], kinds[c] == NUMERIC) for c in (a, b))
        tables.append(joint_counts(la, lb))
    return contingency_from_counts(*tables), cramers_v(tables[0])


def contingency_similarity(
    real: pd.DataFrame, synthetic: pd.DataFrame, a: str, b: str, kinds: dict[str, str]
) -> float:
    return contingency_breakdown(real, synthetic, a, b, kinds)[0]


def meets(strength: float, threshold: float) -> bool:
    """Whether a pair counts: its real correlation (absolute) or association is above the
    threshold; with no threshold every pair counts."""
    if threshold <= 0:
        return True
    return bool(not np.isnan(strength) and strength > threshold)


def pair_trend(
    metric: str, score: float, strength: float, thresholds: tuple[float, float]
) -> dict[str, Any]:
    if metric == "CorrelationSimilarity":
        return {
            "metric": metric,
            "score": score,
            "real_correlation": strength,
            "meets_threshold": meets(abs(strength), thresholds[0]),
        }
    return {
        "metric": metric,
        "score": score,
        "real_association": strength,
        "meets_threshold": meets(strength, thresholds[1]),
    }


def property_scores(
    shapes: dict[str, dict[str, Any]], trends: dict[str, dict[str, Any]]
) -> dict[str, float | None]:
    shape_score = _mean(v["score"] for v in shapes.values())
    trend_score = _mean(v["score"] for v in trends.values() if v.get("meets_threshold", True))
    return {
        "overall": _mean([shape_score, trend_score]),
        "column_shapes": shape_score,
        "column_pair_trends": trend_score,
    }


def choose_pairs(
    columns: list[str], max_pairs: int, seed: int
) -> tuple[list[tuple[str, str]], bool]:
    pairs = list(itertools.combinations(columns, 2))
    sampled = len(pairs) > max_pairs
    if sampled:
        rng = np.random.default_rng(seed)
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), max_pairs, replace=False))]
    return pairs, sampled


def column_pair_trend(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    a: str,
    b: str,
    kinds: dict[str, str],
    thresholds: tuple[float, float],
) -> dict[str, Any]:
    """One pair's trend: CorrelationSimilarity for two numerical columns, else
    ContingencySimilarity, with its real strength against ``thresholds``."""
    if kinds[a] == NUMERIC and kinds[b] == NUMERIC:
        score, strength, _ = correlation_breakdown(real, synthetic, a, b)
        return pair_trend("CorrelationSimilarity", score, strength, thresholds)
    score, strength = contingency_breakdown(real, synthetic, a, b, kinds)
    return pair_trend("ContingencySimilarity", score, strength, thresholds)


def quality_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    max_pairs: int = 500,
    seed: int = 0,
    real_correlation_threshold: float = REAL_CORRELATION_THRESHOLD,
    real_association_threshold: float = REAL_ASSOCIATION_THRESHOLD,
    sdtypes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Column shapes, column pair trends and the overall score, with per-column detail.
    ``sdtypes``: declared column types (metadata), over the detected ones."""
    columns = [c for c in real.columns if c in synthetic.columns]
    kinds = quality_kinds(real, columns, sdtypes)
    shapes: dict[str, dict[str, Any]] = {}
    for c, k in kinds.items():
        if k == NUMERIC:
            shapes[c] = {"metric": "KSComplement", "score": ks_complement(real[c], synthetic[c])}
        else:
            shapes[c] = {"metric": "TVComplement", "score": tv_complement(real[c], synthetic[c])}
    pairs, sampled = choose_pairs(list(kinds), max_pairs, seed)
    thresholds = (real_correlation_threshold, real_association_threshold)
    trends: dict[str, dict[str, Any]] = {}
    for a, b in pairs:
        trends[f"{a} | {b}"] = column_pair_trend(real, synthetic, a, b, kinds, thresholds)
    return {
        **property_scores(shapes, trends),
        "sdtypes": dict(kinds),
        "columns": shapes,
        "pairs": trends,
        "pairs_sampled": {"sampled": sampled, "pairs": len(pairs), "seed": seed},
        "thresholds": {
            "real_correlation": real_correlation_threshold,
            "real_association": real_association_threshold,
        },
        "rows": {"real": len(real), "synthetic": len(synthetic)},
    }


def _mean(values: Any) -> float | None:
    finite = [float(v) for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(finite)) if finite else None
