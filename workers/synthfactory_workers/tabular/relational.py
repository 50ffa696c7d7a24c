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
- Keys are generated, never copied: root primary keys from global row numbers (past the
  source's largest integer key; text keys ``<shard>-<n>``), other tables' keys from the
  shard index and their row within the shard (``<shard>-<n>``, or for integer keys
  ``start + shard * 2^32 + n``). A child's foreign key is its synthetic parent's key, so
  every foreign key points to a parent of the same shard: integrity holds per shard and so
  across shards.
- A shard is ``shard.rows`` root rows with all their descendants. Every root row is kept
  (no constraints, no dedup), so the flow never drops a row and never orphans a child.

Source rows whose foreign key matches no parent (or is null) are left out of fitting and
counted in ``prepared["orphans"]``.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError
from synthfactory.jsonsafe import plain
from synthfactory.sources import fingerprint, read_table
from synthfactory.spec.generators.relational import RelationalConfig, structure
from synthfactory_workers.contract import Generator, ShardOutput, ShardTask

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from synthfactory.spec import JobSpec
    from synthfactory.storage import ObjectStore
    from synthfactory_workers.tabular.copula import GaussianCopula

PARENT_PREFIX = "__parent__"
COUNT_PREFIX = "__n_"
#: parent categorical columns with at most this many values enter a child as indicators
MAX_INDICATORS = 16
#: integer keys of non-root tables: start + shard index * STRIDE + row within the shard
STRIDE = 1 << 32


def _config(spec: JobSpec) -> RelationalConfig:
    if not isinstance(spec.generator, RelationalConfig):
        raise ConfigError(f"generator kind {spec.generator.kind!r} is not relational")
    return spec.generator


def count_column(child: str) -> str:
    return f"{COUNT_PREFIX}{child}"


def model_key(fingerprints: dict[str, str], config: RelationalConfig) -> str:
    fit = config.model_dump(mode="json")
    for table in fit["tables"].values():
        table.pop("source")
    blob = json.dumps([fingerprints, fit], sort_keys=True)
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
        rel = config.parent_of(name)
        if rel is not None and rel.foreign_key not in columns:
            raise ConfigError(
                f"foreign key {rel.foreign_key!r} (of {rel.parent} -> {rel.child}) is not a "
                f"column of {table.source}",
                fix=f"use one of {name}'s columns: {columns}",
            )
        keys = {key} | ({rel.foreign_key} if rel else set())
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


def design(
    config: RelationalConfig, frames: dict[str, pd.DataFrame]
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, Any]], dict[str, int]]:
    """Per table: the frame its copula is fitted on (own columns, parent columns, children
    counts), what sampling needs to know about it, and the orphan rows left out."""
    import pandas as pd

    from synthfactory_workers.tabular.metadata import detect_types

    kept: dict[str, pd.DataFrame] = {}
    orphans: dict[str, int] = {}
    for name in config.order():  # parents first: drop rows whose parent is not there
        df = frames[name]
        rel = config.parent_of(name)
        if rel is not None:
            parent_key = config.tables[rel.parent].primary_key
            assert parent_key is not None
            known = kept[rel.parent][parent_key]
            ok = df[rel.foreign_key].isin(set(known.tolist())) & df[rel.foreign_key].notna()
            orphans[name] = int((~ok).sum())
            df = df[ok.to_numpy()].reset_index(drop=True)
        kept[name] = df
    fitted: dict[str, pd.DataFrame] = {}
    info: dict[str, dict[str, Any]] = {}
    for name in config.order():
        table = config.tables[name]
        df = kept[name]
        rel = config.parent_of(name)
        keys = {k for k in (table.primary_key, rel.foreign_key if rel else None) if k}
        own = [str(c) for c in df.columns if str(c) not in keys]
        types = detect_types(df[own], dict(table.column_types))
        attributes = [c for c in own if types[c] != "id"]
        model = df[attributes].copy()
        model_types = {c: types[c] for c in attributes}
        counts: dict[str, str] = {}
        for child in config.children_of(name):
            assert table.primary_key is not None
            per = kept[child.child][child.foreign_key].value_counts()
            column = count_column(child.child)
            values = df[table.primary_key].map(per).fillna(0).astype("int64").to_numpy()
            model[column] = values
            model_types[column] = "numerical"
            counts[child.child] = column
        parent_columns: list[str] = []
        encodings: dict[str, list[Any]] = {}
        if rel is not None:
            parent = kept[rel.parent]
            parent_key = config.tables[rel.parent].primary_key
            parent_columns = list(info[rel.parent]["attributes"])
            ptypes = info[rel.parent]["types"]
            for c in parent_columns:
                distinct = parent[c].dropna().unique().tolist()
                if ptypes[c] in ("categorical", "boolean") and 2 <= len(distinct) <= MAX_INDICATORS:
                    encodings[c] = sorted((plain(v) for v in distinct), key=str)
            joined = parent.set_index(parent_key)[parent_columns]
            joined = joined.loc[df[rel.foreign_key].to_numpy()].reset_index(drop=True)
            given = parent_frame(joined, parent_columns, encodings)
            model = pd.concat([given, model.reset_index(drop=True)], axis=1)
            for c in given.columns:
                original = str(c).removeprefix(PARENT_PREFIX).split("==")[0]
                model_types[str(c)] = "boolean" if "==" in str(c) else ptypes[original]
        fitted[name] = model
        info[name] = {
            "attributes": attributes,
            "types": types,
            "counts": counts,
            "max_counts": {c: int(model[col].max()) for c, col in counts.items()},
            "parent_columns": parent_columns,
            "encodings": encodings,
            "model_types": model_types,
            "ids": _id_starts(df, table.primary_key, [c for c in own if types[c] == "id"]),
        }
    return fitted, info, orphans


def parent_frame(
    rows: pd.DataFrame, columns: list[str], encodings: dict[str, list[Any]]
) -> pd.DataFrame:
    """The parent's columns as the child's copula sees them: numbers as they are, a
    categorical column with few values as one indicator per value (``__parent__c==i``).

    A copula codes a category by its frequency interval, which orders categories
    arbitrarily: a child attribute that is high for the middle category (Gentoo body mass,
    between Adelie and Chinstrap in frequency) barely correlates with that code. An
    indicator per category gives each its own correlation."""
    import pandas as pd

    from synthfactory_workers.tabular.columns import key

    out: dict[str, Any] = {}
    for c in columns:
        if c in encodings:
            codes = rows[c].map(lambda v: key(plain(v)))
            for i, value in enumerate(encodings[c]):
                out[f"{PARENT_PREFIX}{c}=={i}"] = (codes == key(value)).to_numpy()
        else:
            out[PARENT_PREFIX + c] = rows[c].to_numpy()
    return pd.DataFrame(out, index=range(len(rows)))


def _id_starts(df: pd.DataFrame, primary: str | None, others: list[str]) -> dict[str, int | None]:
    """Per generated key column: the first integer (past the source's largest) or None for
    text keys."""
    import pandas as pd

    out: dict[str, int | None] = {}
    for column in [c for c in (primary, *others) if c]:
        series = df[column]
        numeric = pd.api.types.is_integer_dtype(series.dtype) and series.notna().any()
        out[column] = int(series.max()) + 1 if numeric else None
    return out


def keys_for(start: int | None, shard: ShardTask, n: int, root: bool) -> Any:
    """``n`` keys unique across the dataset (see the module docstring)."""
    import numpy as np

    if start is None:
        return np.array([f"{shard.index}-{i}" for i in range(n)], dtype=object)
    base = shard.row_start if root else shard.index * STRIDE
    return np.arange(n, dtype=np.int64) + base + start


def children_counts(values: pd.Series, largest: int) -> np.ndarray:
    """A sampled count column as non-negative integers (nulls as 0)."""
    import numpy as np

    x = np.nan_to_num(values.to_numpy(dtype=float), nan=0.0)
    return np.clip(np.round(x), 0, max(largest, 0)).astype(np.int64)


def step_marginals(model: GaussianCopula, df: pd.DataFrame, columns: list[str]) -> None:
    """Children counts get a step (inverted-CDF) empirical marginal: sampled counts then
    follow the source's counts exactly, instead of being smoothed between order statistics
    (which matters when parents are few). Fitting, which already ran, is unchanged: the
    scores came from the tie-averaged CDF."""
    import numpy as np

    from synthfactory_workers.tabular.copula import QUANTILES

    for column in columns:
        col = model.column(column)
        x = df[column].to_numpy(dtype=float)
        steps = np.quantile(x, np.linspace(0, 1, QUANTILES), method="inverted_cdf")
        col["marginal"] = {"kind": "empirical", "params": {"quantiles": steps.tolist()}}


class RelationalGenerator(Generator):
    """Every table of a tree of tables per shard; see the module docstring."""

    @classmethod
    def preflight(cls, spec: JobSpec) -> dict[str, str]:
        from synthfactory_workers.tabular.generator import check_has_values

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
        from synthfactory_workers.tabular.copula import GaussianCopula
        from synthfactory_workers.tabular.generator import _schema_text

        config = _config(spec)
        prints = {n: fingerprint(t.source, spec.storage) for n, t in config.tables.items()}
        key = model_key(prints, config)
        reused = artifacts.exists(f"{key}/meta.json")
        if reused:
            meta = json.loads(artifacts.get_text(f"{key}/meta.json"))
        else:
            frames = read_tables(spec)
            check_tables(config, frames)
            fitted, info, orphans = design(config, frames)
            for name, model_df in fitted.items():
                model = GaussianCopula(
                    config.default_distribution, config.enforce_min_max, config.fit_seed
                )
                model.fit(model_df, info[name]["model_types"])
                step_marginals(model, model_df, list(info[name]["counts"].values()))
                artifacts.put_bytes(f"{key}/{name}.model", model.save())
            schemas = {
                name: _schema_text(read_table(t.source, spec.storage).schema.remove_metadata())
                for name, t in config.tables.items()
            }
            meta = {"tables": info, "orphans": orphans, "schemas": schemas}
            artifacts.put_text(f"{key}/meta.json", json.dumps(meta))  # the marker, last
        return {"model_key": key, "reused": reused, "orphans": meta["orphans"]}

    # -- per actor ------------------------------------------------------------------------
    def load(self) -> None:
        import pyarrow as pa

        from synthfactory_workers.tabular.copula import GaussianCopula

        config = _config(self.spec)
        key = self.context.prepared["model_key"]
        artifacts = self.context.artifacts
        self.meta = json.loads(artifacts.get_text(f"{key}/meta.json"))
        self.models: dict[str, GaussianCopula] = {
            name: GaussianCopula.load(artifacts.get_bytes(f"{key}/{name}.model"))
            for name in config.tables
        }
        self.schemas = {
            name: pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(text)))
            for name, text in self.meta["schemas"].items()
        }
        self.generate(ShardTask(0, 0, 4, 0))  # warm every code path

    def generate(self, shard: ShardTask) -> ShardOutput:
        import numpy as np

        from synthfactory_workers.tabular.generator import to_arrow

        config = _config(self.spec)
        order = config.order()
        seeds = np.random.SeedSequence([shard.seed, 0x4E1]).generate_state(len(order), np.uint64)
        seed = {name: int(s >> 1) for name, s in zip(order, seeds, strict=True)}
        frames: dict[str, pd.DataFrame] = {}
        for name in order:
            info = self.meta["tables"][name]
            rel = config.parent_of(name)
            table = config.tables[name]
            if rel is None:
                df = self.models[name].sample(shard.rows, seed[name])
                parent_rows = None
            else:
                parent = frames[rel.parent]
                pinfo = self.meta["tables"][rel.parent]
                counts = children_counts(parent[pinfo["counts"][name]], pinfo["max_counts"][name])
                parent_rows = np.repeat(np.arange(len(parent)), counts)
                rows = parent.iloc[parent_rows][info["parent_columns"]].reset_index(drop=True)
                given = parent_frame(rows, info["parent_columns"], info["encodings"])
                df = self.models[name].sample_given(given, seed[name])
            n = shard.rows if rel is None else len(parent_rows)  # type: ignore[arg-type]
            df = df.reset_index(drop=True)
            if len(df) != n:  # a model with no columns at all
                df = df.reindex(range(n))
            for column, start in info["ids"].items():
                df[column] = keys_for(
                    start, shard, n, root=rel is None and column == table.primary_key
                )
            if rel is not None:
                parent_key = config.tables[rel.parent].primary_key
                df[rel.foreign_key] = frames[rel.parent][parent_key].to_numpy()[parent_rows]
            frames[name] = df
        tables = {name: to_arrow(frames[name], self.schemas[name]) for name in order}
        stats = {f"rows_{name}": float(len(t)) for name, t in tables.items()}
        return ShardOutput(tables[order[0]], None, stats, tables)

    def identity(self) -> dict[str, str]:
        config = _config(self.spec)
        return {
            "generator": config.kind,
            "synthesizer": config.synthesizer,
            "model": self.context.prepared["model_key"],
            "source": config.source,
        }
