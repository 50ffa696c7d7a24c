"""Relational (multi-table) synthesis: a tree of tables linked by keys, parents first.

The method (the idea of HMA, Patki et al. 2016, simplified to one copula per table):

- Counts ride with the parent. Before a table is fitted, one column ``__n_<child>`` per
  child table is added to it: how many child rows reference that row. The table's Gaussian
  copula models them jointly with its own columns, so a sampled parent row comes with its
  children counts, correlated with its attributes (rounded, clipped at 0 and at the
  source's largest count).
- Children are conditioned on their parent. A child table is fitted joined with its
  parent's non-key columns (named ``__parent__<column>``). For each synthetic parent row,
  its ``__n_<child>`` children are drawn with that parent's values as per-row conditions:
  ``GaussianCopula.sample_given``, the conditional normal
  z_child | z_parent ~ N(S_cp S_pp^-1 z_p, S_cc - S_cp S_pp^-1 S_pc) in normal-score space.
  Grandchildren follow the same way from the children (any depth).
- Several parents: a child is generated from one *context* parent (above; chosen in the
  spec) and its other foreign keys are matched afterwards (``relational_keys``): each
  referenced parent row carries how many children point to it (``__n_<child>__<key>``) and
  the child's copula is fitted with that parent's columns (``__ref__<key>__<column>``), so a
  sampled child takes a free slot of the parent row nearest to the columns it drew.
- Keys are generated, never copied: root primary keys from global row numbers (past the
  source's largest integer key; text keys ``<shard>-<n>``), other tables' keys from the
  shard index and their row within the shard (``<shard>-<n>``, or for integer keys
  ``start + shard * 2^32 + n``). A child's foreign keys are its synthetic parents' keys in
  the same shard, so integrity holds per shard and so across shards.
- Lookup tables (a parentless table other than the root, e.g. merchants, with the tables
  generated from it) are generated whole, ``rows`` x their source's rows per root row, with
  a seed from the job's seed alone: every shard computes the same rows and keys (``w-<n>``
  or ``start + n``) and matches its children's keys against all of them, so keys point into
  other shards' files; each shard writes its proportional slice of them. A re-run shard
  computes the same tables again.
- A shard is ``shard.rows`` root rows with all their descendants. Every root row is kept
  (no constraints, no dedup), so the flow never drops a row and never orphans a child.

Source rows whose context foreign key matches no parent (or is null) are left out of
fitting and counted in ``prepared["orphans"]``; a non-context key that matches no parent
keeps its row (its parent columns are missing) and is counted as ``<child>.<key>``.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError
from synthfactory.sources import fingerprint, read_table
from synthfactory.spec.generators.relational import RelationalConfig, Relationship, structure
from synthfactory_workers.contract import Generator, ShardOutput, ShardTask
from synthfactory_workers.tabular.fit_cache import FitCache
from synthfactory_workers.tabular.relational_design import (
    REF_PREFIX,
    SAME_PREFIX,
    ancestor_keys,
    design,
    lineage,
    link_id,
    parent_frame,
)
from synthfactory_workers.tabular.relational_keys import (
    children_counts,
    keys_for,
    match,
    require_parents,
    shard_slice,
    whole_rows,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from synthfactory.spec import JobSpec
    from synthfactory.storage import ObjectStore
    from synthfactory_workers.tabular.copula import GaussianCopula

#: the layout of the fitted models and meta.json (part of the model key)
FORMAT = 2


def _config(spec: JobSpec) -> RelationalConfig:
    if not isinstance(spec.generator, RelationalConfig):
        raise ConfigError(f"generator kind {spec.generator.kind!r} is not relational")
    return spec.generator


def model_key(fingerprints: dict[str, str], config: RelationalConfig) -> str:
    fit = config.model_dump(mode="json")
    for table in fit["tables"].values():
        table.pop("source")
    blob = json.dumps([FORMAT, fingerprints, fit], sort_keys=True)
    return f"relational/{hashlib.sha256(blob.encode()).hexdigest()[:24]}"


def read_tables(spec: JobSpec) -> dict[str, pd.DataFrame]:
    config = _config(spec)
    return {
        name: read_table(t.source, spec.storage).to_pandas() for name, t in config.tables.items()
    }


def check_tables(config: RelationalConfig, frames: dict[str, pd.DataFrame]) -> None:
    """What the sources can refute: column names, keys, personal data."""
    from synthfactory_workers.tabular.metadata import detect_pii

    for name, table in config.tables.items():
        df = frames[name]
        columns = [str(c) for c in df.columns]
        where = f"generator.tables.{name}"
        unknown = sorted(set(table.column_types) - set(columns))
        if unknown:
            raise ConfigError(
                f"{where}.column_types names column(s) not in {table.source}: {unknown}",
                fix=f"use the table's columns: {columns}",
            )
        reserved = [c for c in columns if c.startswith("__")]
        if reserved:
            raise ConfigError(
                f"{table.source} has column(s) starting with '__' (reserved): {reserved}",
                fix="rename them",
            )
        if len(df) < 2:
            raise ConfigError(f"{where}: {table.source} needs at least 2 rows to fit")
        key = table.primary_key
        if key is not None:
            if key not in columns:
                raise ConfigError(
                    f"{where}.primary_key {key!r} is not a column of {table.source}",
                    fix=f"use one of its columns: {columns}",
                )
            if df[key].isna().any() or df[key].duplicated().any():
                raise ConfigError(
                    f"{where}.primary_key {key!r} is not unique and non-null in {table.source}",
                    fix="name a column whose values identify one row each",
                )
        keys = {key} if key else set()
        for rel in config.parents_of(name):
            if rel.foreign_key not in columns:
                i = config.relationships.index(rel)
                raise ConfigError(
                    f"generator.relationships[{i}].foreign_key {rel.foreign_key!r} (of "
                    f"{rel.parent} -> {rel.child}) is not a column of {table.source}",
                    fix=f"use one of {name}'s columns: {columns}",
                )
            keys.add(rel.foreign_key)
        personal = detect_pii(
            df.drop(columns=[k for k in keys if k]), {}, True, set(table.column_types)
        )
        if personal:
            raise ConfigError(
                f"table {name!r} holds personal data {personal}: relational synthesis does not "
                "fake personal data yet, and would copy its values",
                fix=f"drop these columns from {table.source}, or set their type in "
                f"{where}.column_types if they are not personal",
            )


def step_marginals(model: GaussianCopula, df: pd.DataFrame, columns: list[str]) -> None:
    """Children counts get a step (inverted-CDF) empirical marginal: sampled counts then
    follow the source's counts exactly, instead of being smoothed between order statistics
    (which matters when parents are few). Fitting, which already ran, is unchanged: the
    scores came from the tie-averaged CDF."""
    import numpy as np

    from synthfactory_workers.tabular.copula_marginals import QUANTILES

    for column in columns:
        col = model.column(column)
        x = df[column].to_numpy(dtype=float)
        steps = np.quantile(x, np.linspace(0, 1, QUANTILES), method="inverted_cdf")
        col["marginal"] = {"kind": "empirical", "params": {"quantiles": steps.tolist()}}


class RelationalGenerator(Generator):
    """Every table of a tree of tables per shard; see the module docstring."""

    @classmethod
    def preflight(cls, spec: JobSpec) -> dict[str, str]:
        from synthfactory_workers.tabular.checks import check_has_values

        config = _config(spec)
        structure(config)
        frames = read_tables(spec)
        for name, frame in frames.items():
            check_has_values(frame, config.tables[name].source, f"generator.tables.{name}.source")
        check_tables(config, frames)
        return {
            f"{name}_sha256": fingerprint(t.source, spec.storage)
            for name, t in config.tables.items()
        }

    @classmethod
    def prepare(cls, spec: JobSpec, artifacts: ObjectStore) -> dict[str, Any]:
        """Fit one copula per table (or reuse the cached fit)."""
        from synthfactory_workers.tabular.arrow_io import schema_text
        from synthfactory_workers.tabular.copula import GaussianCopula

        config = _config(spec)
        prints = {n: fingerprint(t.source, spec.storage) for n, t in config.tables.items()}
        cache = FitCache(artifacts, model_key(prints, config))
        reused = cache.exists()
        if reused:
            meta = cache.meta()
        else:
            frames = read_tables(spec)
            check_tables(config, frames)
            fitted, info, orphans = design(config, frames)
            models: dict[str, bytes] = {}
            for name, model_df in fitted.items():
                model = GaussianCopula(
                    config.default_distribution, config.enforce_min_max, config.fit_seed
                )
                model.fit(model_df, info[name]["model_types"])
                step_marginals(model, model_df, list(info[name]["counts"].values()))
                models[name] = model.save()
            schemas = {
                name: schema_text(read_table(t.source, spec.storage).schema.remove_metadata())
                for name, t in config.tables.items()
            }
            meta = {"tables": info, "orphans": orphans, "schemas": schemas}
            cache.save(models, meta)
        return {"model_key": cache.key, "reused": reused, "orphans": meta["orphans"]}

    # -- per actor ------------------------------------------------------------------------
    def load(self) -> None:
        from synthfactory_workers.tabular.arrow_io import read_schema
        from synthfactory_workers.tabular.copula import GaussianCopula

        config = _config(self.spec)
        cache = FitCache(self.context.artifacts, self.context.prepared["model_key"])
        self.meta = cache.meta()
        self.models: dict[str, GaussianCopula] = {
            name: GaussianCopula.load(cache.model(name)) for name in config.tables
        }
        self.schemas = {name: read_schema(text) for name, text in self.meta["schemas"].items()}
        self.generate(ShardTask(0, 0, 4, 0))  # warm every code path

    def generate(self, shard: ShardTask) -> ShardOutput:
        import numpy as np

        from synthfactory_workers.tabular.arrow_io import to_arrow

        config = _config(self.spec)
        order = config.order()
        seeds = np.random.SeedSequence([shard.seed, 0x4E1]).generate_state(len(order), np.uint64)
        whole = np.random.SeedSequence([self.spec.seed, 0x3A1E]).generate_state(
            len(order), np.uint64
        )
        seed = {
            name: int((w if config.is_whole(name) else s) >> 1)
            for name, s, w in zip(order, seeds, whole, strict=True)
        }
        frames: dict[str, pd.DataFrame] = {}
        origin: dict[str, np.ndarray] = {}  # tables generated whole: their lookup root row
        for name in order:
            df, parent_rows = self._sample(name, shard, frames, seed[name])
            rel = config.parent_of(name)
            if config.is_whole(name):
                origin[name] = (
                    np.arange(len(df)) if rel is None else origin[rel.parent][parent_rows]
                )
            self._keys(name, shard, df, frames, parent_rows)
            rng = np.random.default_rng([seed[name], 0x3A7])
            for other in config.others_of(name):
                self._match(other, df, frames, rng, parent_rows)
            drawn = [c for c in df.columns if c.startswith((REF_PREFIX, SAME_PREFIX))]
            frames[name] = df.drop(columns=drawn)
        total = self.spec.rows or shard.rows
        whole_sizes = {name: len(frames[name]) for name in origin}
        for name, rows in origin.items():
            lo, hi = shard_slice(shard, total, whole_sizes[config.component_root(name)])
            frames[name] = frames[name][(rows >= lo) & (rows < hi)].reset_index(drop=True)
        tables = {name: to_arrow(frames[name], self.schemas[name]) for name in order}
        stats = {f"rows_{name}": float(len(t)) for name, t in tables.items()}
        return ShardOutput(tables[order[0]], None, stats, tables)

    def _sample(
        self, name: str, shard: ShardTask, frames: dict[str, pd.DataFrame], seed: int
    ) -> tuple[pd.DataFrame, np.ndarray | None]:
        """The table's rows (columns and drawn parent columns, no keys yet) and, for a
        child, each row's context parent row."""
        import numpy as np

        config = _config(self.spec)
        info = self.meta["tables"][name]
        rel = config.parent_of(name)
        if rel is None:
            n = shard.rows
            if config.is_whole(name):
                root_rows = self.meta["tables"][config.root]["source_rows"]
                n = whole_rows(self.spec.rows or shard.rows, root_rows, info["source_rows"])
            df = self.models[name].sample(n, seed)
            parent_rows = None
        else:
            parent = frames[rel.parent]
            pinfo = self.meta["tables"][rel.parent]
            link = link_id(rel)
            counts = children_counts(parent[pinfo["counts"][link]], pinfo["max_counts"][link])
            parent_rows = np.repeat(np.arange(len(parent)), counts)
            rows = parent.iloc[parent_rows][info["parent_columns"]].reset_index(drop=True)
            given = parent_frame(rows, info["parent_columns"], info["encodings"])
            df = self.models[name].sample_given(given, seed)
            n = len(parent_rows)
        df = df.reset_index(drop=True)
        if len(df) != n:  # a model with no columns at all
            df = df.reindex(range(n))
        return df, parent_rows

    def _keys(
        self,
        name: str,
        shard: ShardTask,
        df: pd.DataFrame,
        frames: dict[str, pd.DataFrame],
        parent_rows: np.ndarray | None,
    ) -> None:
        """Generated keys, and the context foreign key from the parent rows."""
        config = _config(self.spec)
        table = config.tables[name]
        rel = config.parent_of(name)
        whole = config.is_whole(name)
        for column, start in self.meta["tables"][name]["ids"].items():
            root = rel is None and column == table.primary_key
            df[column] = keys_for(start, shard, len(df), root, whole)
        if rel is not None:
            parent_key = config.tables[rel.parent].primary_key
            df[rel.foreign_key] = frames[rel.parent][parent_key].to_numpy()[parent_rows]

    def _match(
        self,
        rel: Relationship,
        df: pd.DataFrame,
        frames: dict[str, pd.DataFrame],
        rng: np.random.Generator,
        parent_rows: np.ndarray | None,
    ) -> None:
        """A non-context foreign key: each row takes a slot of the parent row nearest to
        the parent columns it drew (``relational_keys.match``); a row that drew "same as
        my ancestor" takes the ancestor and is drawn again given it (``_redraw``)."""
        import numpy as np
        import pandas as pd

        config = _config(self.spec)
        parent = frames[rel.parent]
        pinfo = self.meta["tables"][rel.parent]
        ref = self.meta["tables"][rel.child]["refs"][link_id(rel)]
        link = link_id(rel)
        require_parents(rel.parent, rel.child, rel.foreign_key, len(parent), len(df))
        counts = children_counts(parent[pinfo["counts"][link]], pinfo["max_counts"][link])
        have = parent_frame(parent, ref["columns"], ref["encodings"], ref["prefix"])
        parent_key = config.tables[rel.parent].primary_key
        fixed = None
        if "same" in ref:  # the rows that drew "same as my ancestor" take it
            chain = lineage(config, rel)
            via = ancestor_keys(config, chain, df[chain[0].foreign_key], frames)
            where = pd.Index(parent[parent_key]).get_indexer(via.to_numpy())
            same = df[ref["same"]].fillna(False).to_numpy(dtype=bool)
            fixed = np.where(same & (where >= 0), where, -1)
            if (fixed >= 0).any():
                self._redraw(rel, df, frames, parent_rows, fixed, int(rng.integers(2**62)))
        rows = match(have, df, counts, rng, fixed)
        df[rel.foreign_key] = parent[parent_key].to_numpy()[rows]

    def _redraw(
        self,
        rel: Relationship,
        df: pd.DataFrame,
        frames: dict[str, pd.DataFrame],
        parent_rows: np.ndarray | None,
        fixed: np.ndarray,
        seed: int,
    ) -> None:
        """The rows whose key follows their ancestor, drawn again given their context
        parent *and* that ancestor's columns: the ancestor was not among the conditions of
        the first draw (an account's fee follows its branch's salaries)."""
        import numpy as np
        import pandas as pd

        config = _config(self.spec)
        info = self.meta["tables"][rel.child]
        ref = info["refs"][link_id(rel)]
        rows = np.flatnonzero(fixed >= 0)
        parts = []
        context = config.parent_of(rel.child)
        if context is not None and parent_rows is not None:
            above = frames[context.parent].iloc[parent_rows[rows]].reset_index(drop=True)
            parts.append(parent_frame(above, info["parent_columns"], info["encodings"]))
        ancestor = frames[rel.parent].iloc[fixed[rows]].reset_index(drop=True)
        parts.append(parent_frame(ancestor, ref["columns"], ref["encodings"], ref["prefix"]))
        parts.append(pd.DataFrame({ref["same"]: np.ones(len(rows), dtype=bool)}))
        new = self.models[rel.child].sample_given(pd.concat(parts, axis=1), seed)
        for column in new.columns:
            if column in df.columns:
                df.loc[rows, column] = new[column].to_numpy()

    def identity(self) -> dict[str, str]:
        config = _config(self.spec)
        return {
            "generator": config.kind,
            "synthesizer": config.synthesizer,
            "model": self.context.prepared["model_key"],
            "source": config.source,
        }
