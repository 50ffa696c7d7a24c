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
- Per-table quality: ``tabular.quality.quality_report`` on each table without its key
  columns (primary and foreign keys are regenerated; their values carry no shape).
- ``intertable_trends`` of a relationship (SDMetrics' multi-table QualityReport property
  "Intertable Trends"): the child joined with its parent over the foreign key, then the
  column pair trends (CorrelationSimilarity, ContingencySimilarity, with the single-table
  report's real-strength thresholds) of every (parent column, child column) pair, and
  their mean over the pairs that meet the threshold. It shows whether a child still
  follows its parent: for a context parent through the conditional draw, for a matched
  key through the matching. On sampled tables (``max_rows``) the join uses the sampled
  rows of both tables.

Report layout (so gates can name them): ``tables.<t>.quality.{overall,column_shapes,...}``,
``relationships.<parent>.<child>.{cardinality_shape_similarity,referential_integrity,
intertable_trends}`` (``<child>.<foreign_key>`` where a child has several keys to one
parent), ``quality.overall`` = the mean of the tables' overall quality,
``quality.cardinality`` and ``quality.intertable_trends`` = the means over relationships.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.tabular.quality import (
    REAL_ASSOCIATION_THRESHOLD,
    REAL_CORRELATION_THRESHOLD,
    column_pair_trend,
    ks_statistic,
    quality_kinds,
    quality_report,
)

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.dataset.manifest import ShardEntry
    from synthfactory.storage import ObjectStore


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


def denormalised(
    parent: pd.DataFrame, child: pd.DataFrame, pk: str, fk: str, drop: set[str]
) -> pd.DataFrame:
    """The child's rows with their parent's columns (``parent.<column>``), keys dropped."""
    own = child.drop(columns=[c for c in child.columns if c in drop and c != fk])
    above = parent.drop(columns=[c for c in parent.columns if c in drop and c != pk])
    above = above.rename(columns={c: f"parent.{c}" for c in above.columns if c != pk})
    joined = own.merge(above, left_on=fk, right_on=pk, how="inner")
    return joined.drop(columns=[c for c in {pk, fk} if c in joined.columns])


def intertable_trends(
    real: pd.DataFrame, synthetic: pd.DataFrame, max_pairs: int = 500, seed: int = 0
) -> dict[str, Any]:
    """Pair trends of (parent column, child column) pairs of denormalised tables (see the
    module docstring): ``score`` (None without a pair that meets its threshold) and
    ``pairs``."""
    columns = [c for c in real.columns if c in synthetic.columns]
    kinds = quality_kinds(real, columns)
    above = [c for c in kinds if c.startswith("parent.")]
    pairs = [(a, b) for a in above for b in kinds if not b.startswith("parent.")]
    if len(pairs) > max_pairs:
        rng = np.random.default_rng(seed)
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), max_pairs, replace=False))]
    trends: dict[str, Any] = {}
    thresholds = (REAL_CORRELATION_THRESHOLD, REAL_ASSOCIATION_THRESHOLD)
    for a, b in pairs:
        if not len(real) or not len(synthetic):
            break
        trends[f"{a} | {b}"] = column_pair_trend(real, synthetic, a, b, kinds, thresholds)
    met = [t["score"] for t in trends.values() if t["meets_threshold"] and not np.isnan(t["score"])]
    return {"score": float(np.mean(met)) if met else None, "pairs": trends}


def link_name(rel: dict[str, str], relationships: list[dict[str, str]]) -> str:
    """A relationship's name under its parent in the report: the child table, or
    ``child.foreign_key`` when the child has several keys to the same parent (an order's
    buyer and seller accounts), so that no link's scores overwrite another's."""
    same = [r for r in relationships if (r["parent"], r["child"]) == (rel["parent"], rel["child"])]
    return rel["child"] if len(same) == 1 else f"{rel['child']}.{rel['foreign_key']}"


def link_report(
    real: dict[str, pd.DataFrame],
    synthetic: dict[str, pd.DataFrame],
    every: dict[str, pd.DataFrame],
    rel: dict[str, str],
    pk: str,
    drop: set[str],
    max_pairs: int,
    seed: int,
) -> dict[str, Any]:
    """One relationship's cardinality, integrity and intertable trends."""
    parent, child, fk = rel["parent"], rel["child"], rel["foreign_key"]
    synth_counts = cardinality(every[parent][pk], every[child][fk])
    real_counts = cardinality(real[parent][pk], real[child][fk])
    trends = intertable_trends(
        denormalised(real[parent], real[child], pk, fk, drop),
        denormalised(synthetic[parent], synthetic[child], pk, fk, drop),
        max_pairs,
        seed,
    )
    return {
        "cardinality_shape_similarity": cardinality_shape_similarity(
            real[parent][pk], real[child][fk], every[parent][pk], every[child][fk]
        ),
        "referential_integrity": referential_integrity(every[parent][pk], every[child][fk]),
        "intertable_trends": trends["score"],
        "intertable_pairs": trends["pairs"],
        "children_per_parent": {
            "real_mean": float(real_counts.mean()) if len(real_counts) else float("nan"),
            "synthetic_mean": float(synth_counts.mean()) if len(synth_counts) else float("nan"),
            "real_max": float(real_counts.max()) if len(real_counts) else float("nan"),
            "synthetic_max": float(synth_counts.max()) if len(synth_counts) else float("nan"),
        },
    }


def table_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    rows: int,
    keys: set[str],
    max_pairs: int,
    seed: int,
    sdtypes: dict[str, str],
) -> dict[str, Any]:
    """One table's quality without its key columns, scored with its declared types."""
    return {
        "quality": quality_report(
            real.drop(columns=[c for c in keys if c in real]),
            synthetic.drop(columns=[c for c in keys if c in synthetic]),
            max_pairs=max_pairs,
            seed=seed,
            sdtypes={c: t for c, t in sdtypes.items() if c not in keys},
        ),
        "rows": rows,
        "rows_scored": len(synthetic),
    }


def relational_report(
    real: dict[str, pd.DataFrame],
    synthetic: dict[str, pd.DataFrame],
    primary_keys: dict[str, str | None],
    relationships: list[dict[str, str]],
    *,
    synthetic_keys: dict[str, pd.DataFrame] | None = None,
    max_pairs: int = 500,
    seed: int = 0,
    sdtypes: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Per-table quality and per-relationship cardinality and integrity (see the module
    docstring). ``synthetic``: each table's rows scored for quality (all, or a sample);
    ``synthetic_keys``: each table's key columns over every row (default: ``synthetic``),
    which cardinality and integrity are computed on; ``sdtypes``: each table's declared
    column types (the spec's ``tables.<t>.column_types``)."""
    every = synthetic_keys if synthetic_keys is not None else synthetic
    keys: dict[str, set[str]] = {t: {k} if k else set() for t, k in primary_keys.items()}
    for rel in relationships:
        keys.setdefault(rel["child"], set()).add(rel["foreign_key"])
    tables = {
        name: table_report(
            real[name], frame, len(every[name]), keys.get(name, set()), max_pairs, seed,
            (sdtypes or {}).get(name, {}),
        )
        for name, frame in synthetic.items()
    }  # fmt: skip
    links: dict[str, Any] = {}
    for rel in relationships:
        drop = keys.get(rel["parent"], set()) | keys.get(rel["child"], set())
        pk = primary_keys[rel["parent"]]
        assert pk is not None
        links.setdefault(rel["parent"], {})[link_name(rel, relationships)] = link_report(
            real, synthetic, every, rel, pk, drop, max_pairs, seed
        )
    overall = [
        t["quality"]["overall"] for t in tables.values() if t["quality"]["overall"] is not None
    ]
    shapes = [
        v["cardinality_shape_similarity"] for links_of in links.values() for v in links_of.values()
    ]
    trends_all = [
        v["intertable_trends"]
        for links_of in links.values()
        for v in links_of.values()
        if v["intertable_trends"] is not None
    ]
    return {
        "quality": {
            "overall": float(np.mean(overall)) if overall else None,
            "cardinality": float(np.nanmean(shapes)) if shapes else None,
            "intertable_trends": float(np.mean(trends_all)) if trends_all else None,
        },
        "tables": tables,
        "relationships": links,
    }


class RowCount:
    """The shard summary of a relational job: its root rows (the tables are read by
    ``read_synthetic_tables`` in the driver)."""

    def partial(self, df: pd.DataFrame, shard: int) -> dict[str, Any]:
        return {"rows": len(df)}

    @staticmethod
    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        return {"rows": sum(int(p["rows"]) for p in parts)}


def read_synthetic_tables(
    store: ObjectStore,
    entries: list[ShardEntry],
    keys: dict[str, list[str]],
    max_rows: int,
    seed: int,
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Per table: (a seeded sample of at most ``max_rows`` rows from the first shards that
    hold that many, every row's key columns from every shard)."""
    import pandas as pd

    from synthfactory.dataset import parquet

    samples: dict[str, pd.DataFrame] = {}
    every: dict[str, pd.DataFrame] = {}
    names = list(entries[0].tables) if entries else []
    for name in names:
        files = [e.tables[name] for e in entries if name in e.tables]
        parts, rows = [], 0
        key_parts = []
        for f in files:
            blob = store.get_bytes(f.path)
            if rows < max_rows:
                table = parquet.decode(blob)
                parts.append(table.to_pandas())
                rows += table.num_rows
                key_parts.append(table.select(keys.get(name, [])).to_pandas())
            else:
                key_parts.append(parquet.decode(blob, keys.get(name, [])).to_pandas())
        sample = pd.concat(parts, ignore_index=True)
        samples[name] = (
            sample.sample(max_rows, random_state=seed) if len(sample) > max_rows else sample
        )
        every[name] = pd.concat(key_parts, ignore_index=True)
    return samples, every
