"""Multi-table metrics with SDMetrics' names and definitions (as of SDMetrics 0.29:
``sdmetrics/multi_table/statistical/cardinality_shape_similarity.py``,
``sdmetrics/reports/utils.py:get_cardinality_distribution``, ``sdmetrics/column_pairs/
statistical/referential_integrity.py``):

- ``CardinalityShapeSimilarity`` of a relationship: the distribution of children per parent
  (every parent row counted, those with no child as 0) in the real and in the synthetic
  tables, compared with KSComplement: 1 - D, D the two-sample Kolmogorov-Smirnov statistic.
- ``ReferentialIntegrity``: the share of child rows whose foreign key is one of the parent's
  primary keys. Where SDMetrics skips null foreign keys, we count them as pointing nowhere
  (a synthetic child must have a parent); the generator never writes a null key.
- Per-table quality: ``tabular_quality.quality_report`` on each table without its key
  columns (primary and foreign keys are regenerated; their values carry no shape).

Report layout (so gates can name them): ``tables.<t>.quality.{overall,column_shapes,...}``,
``relationships.<parent>.<child>.{cardinality_shape_similarity,referential_integrity}``,
and ``quality.overall`` = the mean of the tables' overall quality.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.tabular_quality import ks_statistic, quality_report

if TYPE_CHECKING:
    import pandas as pd

NAMES = (
    "tables.*.quality.overall",
    "tables.*.quality.column_shapes",
    "tables.*.quality.column_pair_trends",
    "tables.*.quality.columns.*",
    "tables.*.quality.pairs.*",
    "tables.*.quality.pairs_sampled.*",
    "tables.*.quality.thresholds.*",
    "tables.*.quality.rows.*",
    "tables.*.rows",
    "tables.*.rows_scored",
    "relationships.*.cardinality_shape_similarity",
    "relationships.*.referential_integrity",
    "relationships.*.children_per_parent.*",
)


def cardinality(parent_keys: pd.Series, child_keys: pd.Series) -> np.ndarray:
    """Children per parent row, 0 for a parent with none (SDMetrics'
    ``get_cardinality_distribution``)."""
    counts = child_keys.value_counts()
    return np.asarray(parent_keys.map(counts).fillna(0).to_numpy(dtype=float))


def cardinality_shape_similarity(
    real_parent: pd.Series, real_child: pd.Series, synth_parent: pd.Series, synth_child: pd.Series
) -> float:
    """1 - KS statistic between the real and synthetic children-per-parent distributions."""
    real = cardinality(real_parent, real_child)
    synthetic = cardinality(synth_parent, synth_child)
    if not len(real) or not len(synthetic):
        return float("nan")
    return 1.0 - ks_statistic(real, synthetic)


def referential_integrity(parent_keys: pd.Series, child_keys: pd.Series) -> float:
    """Share of child rows whose foreign key is a parent's primary key (1.0 for no child)."""
    if not len(child_keys):
        return 1.0
    known = set(parent_keys.dropna().tolist())
    return float(child_keys.map(lambda v: v in known).mean())


def relational_report(
    real: dict[str, pd.DataFrame],
    synthetic: dict[str, pd.DataFrame],
    primary_keys: dict[str, str | None],
    relationships: list[dict[str, str]],
    *,
    max_pairs: int = 500,
    seed: int = 0,
    rows: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Per-table quality and per-relationship cardinality and integrity (see the module
    docstring). ``synthetic`` holds every key of each table, and its other columns for (a
    sample of) its rows; ``rows`` the tables' full row counts."""
    keys: dict[str, set[str]] = {t: {k} if k else set() for t, k in primary_keys.items()}
    for rel in relationships:
        keys.setdefault(rel["child"], set()).add(rel["foreign_key"])
    tables: dict[str, Any] = {}
    for name, frame in synthetic.items():
        drop = keys.get(name, set())
        real_frame = real[name].drop(columns=[c for c in drop if c in real[name]])
        synth_frame = frame.drop(columns=[c for c in drop if c in frame])
        tables[name] = {
            "quality": quality_report(real_frame, synth_frame, max_pairs=max_pairs, seed=seed),
            "rows": (rows or {}).get(name, len(frame)),
            "rows_scored": len(frame),
        }
    links: dict[str, Any] = {}
    for rel in relationships:
        parent, child, fk = rel["parent"], rel["child"], rel["foreign_key"]
        pk = primary_keys[parent]
        assert pk is not None
        synth_counts = cardinality(synthetic[parent][pk], synthetic[child][fk])
        real_counts = cardinality(real[parent][pk], real[child][fk])
        links.setdefault(parent, {})[child] = {
            "cardinality_shape_similarity": cardinality_shape_similarity(
                real[parent][pk], real[child][fk], synthetic[parent][pk], synthetic[child][fk]
            ),
            "referential_integrity": referential_integrity(
                synthetic[parent][pk], synthetic[child][fk]
            ),
            "children_per_parent": {
                "real_mean": float(real_counts.mean()) if len(real_counts) else float("nan"),
                "synthetic_mean": float(synth_counts.mean())
                if len(synth_counts)
                else float("nan"),
                "real_max": float(real_counts.max()) if len(real_counts) else float("nan"),
                "synthetic_max": float(synth_counts.max())
                if len(synth_counts)
                else float("nan"),
            },
        }
    overall = [
        t["quality"]["overall"] for t in tables.values() if t["quality"]["overall"] is not None
    ]
    return {
        "quality": {"overall": float(np.mean(overall)) if overall else None},
        "tables": tables,
        "relationships": links,
    }
