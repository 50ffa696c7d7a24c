"""Sequential metrics: how the synthetic entities' sequences compare with the real ones.

Both sides are tables of steps (one row per step, ``key`` naming the entity, ``index``
ordering its steps; without an index, the table's row order within each entity). Entities
are compared whole: a synthetic sample holds every step of each entity it holds.

- ``sequence_length_similarity``: 1 - D, D the two-sample Kolmogorov-Smirnov statistic
  between the real and the synthetic entities' lengths (steps per entity): KSComplement on
  lengths, one value per entity.
- ``columns.<c>``: per column, KSComplement (numbers, datetimes) or TVComplement
  (categories), as in ``tabular.quality``. A *step* column (neither the key nor a context
  column; the index is one) compares every step row; a *context* column (constant within
  each entity) compares one value per entity, so long sequences do not weigh more.
  ``column_shapes`` is their mean.
- ``lag1_autocorrelation.<c>``, for each numeric step column other than the index: the
  within-entity lag-1 autocorrelation r = sum_e sum_t d_et d_e(t+1) / sum_e sum_t d_et^2,
  d_et = x_et - mean_e(x) the step's deviation from its entity's own mean, t running over
  the entity's steps in order (steps where the column is null are left out first). r
  measures how much a step follows the previous one, level differences between entities
  removed. Score 1 - |r_real - r_synthetic| / 2 (in [0, 1]); NaN when either r is undefined
  (no variation within any entity). ``lag1_autocorrelation_similarity`` is the mean score.
- ``inter_event_time_similarity`` (with an index): KSComplement between the real and the
  synthetic times between consecutive steps of an entity (index differences; datetimes in
  nanoseconds), pooled over entities. None without an index.
- ``overall``: the mean of the four scores above that are defined.

Report layout: ``sequential.{overall, sequence_length_similarity, column_shapes,
columns.<c>.{score,metric,compared}, lag1_autocorrelation_similarity,
lag1_autocorrelation.<c>.{score,real,synthetic}, inter_event_time_similarity, entities.*,
steps.*}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.tabular.quality import ks_complement, ks_statistic, tv_complement
from synthfactory.metrics.tabular.sdtypes import NUMERIC, as_float, kind
from synthfactory.sequences import in_order, index_numbers, lengths

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.dataset.manifest import ShardEntry
    from synthfactory.storage import ObjectStore


def ks_score(real: np.ndarray, synthetic: np.ndarray) -> float:
    """KSComplement of two samples of numbers (NaN when either is empty)."""
    r, s = real[~np.isnan(real)], synthetic[~np.isnan(synthetic)]
    if not len(r) or not len(s):
        return float("nan")
    return 1.0 - ks_statistic(r, s)


def sequence_length_similarity(real_keys: pd.Series, synthetic_keys: pd.Series) -> float:
    """KSComplement of steps per entity (each step row carries its entity's key)."""
    real = lengths(real_keys.to_frame("k"), "k").to_numpy(dtype=float)
    synthetic = lengths(synthetic_keys.to_frame("k"), "k").to_numpy(dtype=float)
    return ks_score(real, synthetic)


def lag1_autocorrelation(values: pd.Series, keys: pd.Series) -> float:
    """Within-entity lag-1 autocorrelation of ordered steps (see the module docstring)."""
    x = as_float(values).to_numpy()
    k = keys.to_numpy()
    keep = ~np.isnan(x)
    x, k = x[keep], k[keep]
    if not len(x):
        return float("nan")
    import pandas as pd

    codes = pd.factorize(k, use_na_sentinel=False)[0]
    means = np.bincount(codes, weights=x) / np.bincount(codes)
    d = x - means[codes]
    same = codes[1:] == codes[:-1]  # consecutive steps of one entity
    denominator = float(np.sum(d**2))
    if denominator <= 1e-12 * max(1.0, float(np.sum(x**2))):
        return float("nan")
    return float(np.sum(d[1:][same] * d[:-1][same]) / denominator)


def inter_event_times(index: np.ndarray, keys: pd.Series) -> np.ndarray:
    """Index differences between consecutive steps of each entity (ordered rows)."""
    k = keys.to_numpy()
    same = k[1:] == k[:-1]
    return np.asarray(np.diff(index)[same], dtype=float)


def sequential_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    key: str,
    index: str | None,
    context: list[str],
) -> dict[str, Any]:
    """Every sequential metric (module docstring) of step tables ``real`` and
    ``synthetic``; ``context``: the columns constant within each entity."""
    real, synthetic = in_order(real, key, index), in_order(synthetic, key, index)
    columns, lag1 = column_scores(real, synthetic, key, index, context)
    inter_event = None
    if index is not None:
        inter_event = ks_score(
            inter_event_times(index_numbers(real[index]), real[key]),
            inter_event_times(index_numbers(synthetic[index]), synthetic[key]),
        )
    scores = {
        "sequence_length_similarity": sequence_length_similarity(real[key], synthetic[key]),
        "column_shapes": _mean(c["score"] for c in columns.values()),
        "lag1_autocorrelation_similarity": _mean(v["score"] for v in lag1.values()),
        "inter_event_time_similarity": inter_event,
    }
    real_lengths = lengths(real, key).to_numpy(dtype=float)
    synthetic_lengths = lengths(synthetic, key).to_numpy(dtype=float)
    return {
        "overall": _mean(scores.values()),
        **scores,
        "columns": columns,
        "lag1_autocorrelation": lag1,
        "entities": {
            "real": len(real_lengths),
            "synthetic": len(synthetic_lengths),
            "real_mean_length": _mean(real_lengths),
            "synthetic_mean_length": _mean(synthetic_lengths),
        },
        "steps": {"real": len(real), "synthetic": len(synthetic)},
    }


def column_scores(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    key: str,
    index: str | None,
    context: list[str],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(each column's shape: context columns once per entity, step columns per step; each
    numeric step column's lag-1 autocorrelation, real against synthetic), of ordered rows."""
    columns: dict[str, dict[str, Any]] = {}
    real_entities = real.groupby(key, sort=True, dropna=False).head(1)
    synthetic_entities = synthetic.groupby(key, sort=True, dropna=False).head(1)
    lag1: dict[str, dict[str, Any]] = {}
    for c in [str(c) for c in real.columns if c != key and c in synthetic.columns]:
        per_entity = c in context
        r = real_entities[c] if per_entity else real[c]
        s = synthetic_entities[c] if per_entity else synthetic[c]
        k = kind(real[c])
        if k is None:
            continue
        score = ks_complement(r, s) if k == NUMERIC else tv_complement(r, s)
        columns[c] = {
            "score": score,
            "metric": "KSComplement" if k == NUMERIC else "TVComplement",
            "compared": "entities" if per_entity else "steps",
        }
        if k == NUMERIC and not per_entity and c != index:
            r_real = lag1_autocorrelation(real[c], real[key])
            r_synthetic = lag1_autocorrelation(synthetic[c], synthetic[key])
            lag1[c] = {
                "score": 1.0 - abs(r_real - r_synthetic) / 2.0,
                "real": r_real,
                "synthetic": r_synthetic,
            }
    return columns, lag1


def read_sequences(
    store: ObjectStore, entries: list[ShardEntry], table: str, max_rows: int
) -> pd.DataFrame:
    """The synthetic steps of whole shards (so of whole entities), read in shard order
    until at least ``max_rows`` steps are in (shards are independent draws)."""
    import pandas as pd

    from synthfactory.dataset import parquet

    parts: list[pd.DataFrame] = []
    rows = 0
    for entry in entries:
        if rows >= max_rows:
            break
        if table not in entry.tables:
            continue
        frame = parquet.decode(store.get_bytes(entry.tables[table].path)).to_pandas()
        parts.append(frame)
        rows += len(frame)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _mean(values: Any) -> float | None:
    finite = [float(v) for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(finite)) if finite else None
