"""Tabular synthesizers as synthfactory generators: fit once per source and config (cached in
the artifact store), sample per shard with fake personal data, regenerated ids,
constraints, conditions and class balancing."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, ClassVar

from synthfactory.errors import ConfigError
from synthfactory.metrics.tabular import holdout
from synthfactory.sources import fingerprint, read_table
from synthfactory.spec.generators import GENERATORS
from synthfactory.spec.generators.tabular import TabularConfigBase
from synthfactory_workers.contract import Generator, Quotas, ShardOutput, ShardTask, quota_key
from synthfactory_workers.tabular.arrow_io import read_schema, to_arrow
from synthfactory_workers.tabular.fit_cache import MODEL, FitCache

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from synthfactory.spec import JobSpec
    from synthfactory.storage import ObjectStore
    from synthfactory_workers.tabular.base import Synthesizer

SYNTHETIC_FLAG = "is_synthetic"


def tabular_config(spec: JobSpec) -> TabularConfigBase:
    if not isinstance(spec.generator, TabularConfigBase):
        raise ConfigError(f"generator kind {spec.generator.kind!r} is not a tabular synthesizer")
    return spec.generator


def synthesizer_class(kind: str) -> type[Synthesizer]:
    """The synthesizer of a tabular generator ``kind`` (its generator's ``synthesizer``)."""
    generator = GENERATORS.load(kind)
    if not (isinstance(generator, type) and issubclass(generator, TabularGenerator)):
        tabular = [k for k in GENERATORS.kinds() if _fits_a_table(k)]
        raise ConfigError(
            f"generator {kind!r} is not a tabular synthesizer", fix=f"use one of {tabular}"
        )
    return generator.synthesizer


def _fits_a_table(kind: str) -> bool:
    config = GENERATORS.config(kind)
    return config is not None and issubclass(config, TabularConfigBase)


def model_key(
    source_sha256: str, config: TabularConfigBase, split: dict[str, Any] | None = None
) -> str:
    """Fitted models are addressed by the source's checksum, the fitting config (the
    sampling-only options, such as constraints and conditions, are left out) and the
    holdout split (``holdout.settings``: fraction, seed, stratify column): a model fitted
    on other training rows is another model."""
    fit = config.model_dump(mode="json", exclude=TabularConfigBase.FIT_EXCLUDE)
    blob = json.dumps([source_sha256, fit, split or {}], sort_keys=True)
    return f"{config.kind}/{hashlib.sha256(blob.encode()).hexdigest()[:24]}"


def required_rows(spec: JobSpec, df: pd.DataFrame | None = None) -> int | None:
    """With ``augment.balance``: the rows the job must have (synthetic rows that balance
    the classes, plus the source rows when ``combined``); None otherwise."""
    from synthfactory_workers.tabular.sampling import balance_plan

    config = tabular_config(spec)
    if config.augment is None:
        return None
    if df is None:
        df = read_table(config.source, spec.storage).to_pandas()
    needed = sum(n for _, n in balance_plan(df[config.augment.balance]))
    return needed + (len(df) if config.augment.combined else 0)


class TabularGenerator(Generator):
    """Any tabular synthesizer, through the shared machinery (fit cache, personal data,
    ids, constraints, conditions, class balancing, shards). A synthesizer's generator
    names its ``synthesizer`` class and builds a new one from the spec (``new_model``); its
    config registers the generator (``@GENERATORS.register("module:XGenerator")``)."""

    synthesizer: ClassVar[type[Synthesizer]]

    @classmethod
    def preflight(cls, spec: JobSpec) -> dict[str, str]:
        from synthfactory_workers.tabular import checks
        from synthfactory_workers.tabular.sampling import balance_plan

        config = tabular_config(spec)
        df = read_table(config.source, spec.storage).to_pandas()
        checks.check_has_values(df, config.source, "generator.source")
        types, personal = checks.check_columns(config, df)
        train = df.iloc[holdout.for_job(df, spec).train]
        checks.check_fit_rows(config, len(df), len(train))
        checks.check_conditions(config, train, types)
        if config.privacy is not None:  # what the budget does to the output (fit rows public)
            from synthfactory_workers.tabular.dp_checks import check_accuracy

            check_accuracy(config, types, personal, train)
        if config.augment is not None:
            plan = balance_plan(df[config.augment.balance])
            checks.check_balance(config, plan, required_rows(spec, df) or 0, spec.rows)
        return {
            "source_sha256": fingerprint(config.source, spec.storage),
            # the fit leaves the holdout out, so the split decides the data too
            "holdout": json.dumps(holdout.settings(spec), sort_keys=True),
        }

    @classmethod
    def derived_rows(cls, spec: JobSpec) -> int | None:
        return required_rows(spec)

    @classmethod
    def quotas(cls, spec: JobSpec) -> Quotas | None:
        """With ``augment.balance``: every class at the largest class's count (the source
        rows included when ``combined``; source rows with no label stay as they are)."""
        from collections import Counter

        from synthfactory_workers.tabular.sampling import balance_plan

        config = tabular_config(spec)
        if config.augment is None:
            return None
        labels = read_table(config.source, spec.storage).to_pandas()[config.augment.balance]
        counts: Counter[str] = Counter()
        if config.augment.combined:
            counts.update(quota_key(v) for v in labels.astype(object))
        for value, need in balance_plan(labels):
            counts[quota_key(value)] += need
        return Quotas(config.augment.balance, dict(counts))

    @classmethod
    def prepare(cls, spec: JobSpec, artifacts: ObjectStore) -> dict[str, Any]:
        """Fit on the training part of the source (``metrics.holdout``: the held-out rows
        are never shown to the model), or reuse the cached fit, then check conditions
        against the fitted model."""
        from synthfactory_workers.tabular import constraints
        from synthfactory_workers.tabular.sampling import balance_plan

        config = tabular_config(spec)
        key = model_key(fingerprint(config.source, spec.storage), config, holdout.settings(spec))
        cache = FitCache(artifacts, key)
        reused = cache.exists()
        df: pd.DataFrame | None = None
        if reused:
            meta = cache.meta()
        else:
            table = read_table(config.source, spec.storage)
            df = table.to_pandas()
            meta = cls._fit(spec, df, table.schema, cache)
        model = cls.load_model(cache.model(), "cpu")
        out: dict[str, Any] = {
            "model_key": key,
            "reused": reused,
            "column_types": meta["types"],
            "pii_columns": meta["pii"],
            "training": meta["training"],
            "split": meta.get("split", {}),
        }
        if meta.get("privacy_budget") is not None:
            out["privacy_budget"] = meta["privacy_budget"]
        if config.conditions:
            model.resolve_conditions(dict(config.conditions))
        needs_source = config.augment is not None or any(
            c.kind == "fixed_combinations" for c in config.constraints
        )
        if needs_source and df is None:
            df = read_table(config.source, spec.storage).to_pandas()
        if df is not None:
            out["constraint_facts"] = constraints.source_facts(list(config.constraints), df)
        if config.augment is not None and df is not None:
            plan = balance_plan(df[config.augment.balance])
            for value, _ in plan:  # every class must be one the model can produce
                model.resolve_conditions({config.augment.balance: value})
            out["balance"] = [[value, need] for value, need in plan]
            out["source_rows"] = len(df)
        return out

    @classmethod
    def _fit(
        cls, spec: JobSpec, df: pd.DataFrame, schema: pa.Schema, cache: FitCache
    ) -> dict[str, Any]:
        from synthfactory_workers.tabular import pii
        from synthfactory_workers.tabular.arrow_io import output_schema, schema_text
        from synthfactory_workers.tabular.checks import check_columns

        config = tabular_config(spec)
        types, found = check_columns(config, df)
        salt = pii.new_salt()
        modelled = [c for c in df.columns if str(c) not in found]
        model = cls.new_model(spec, {str(c): types[c] for c in modelled}, schema)
        # the model learns from the training rows only; types, personal values never to
        # emit and id ranges come from every source row
        split = holdout.for_job(df, spec)
        train = df.iloc[split.train].reset_index(drop=True)
        model.fit(train[modelled], {c: types[c] for c in modelled})
        private = config.privacy is not None
        meta = {
            "synthesizer": cls.synthesizer.name,
            "types": types,
            "pii": found,
            "salt": salt,
            # under DP no trace of the source's values is kept: fakes are not checked
            # against them (a collision is chance, independent of the data)
            "digests": {c: [] if private else pii.digests(df[c].tolist(), salt) for c in found},
            "id_start": _id_starts(df, {c: t for c, t in types.items() if c not in found}, private),
            "schema": schema_text(output_schema(schema, found)),
            "training": list(model.history),
            "split": split.info(),
            "privacy_budget": model.privacy_budget,
        }
        cache.save({MODEL: model.save()}, meta)
        return meta

    @classmethod
    def new_model(
        cls, spec: JobSpec, types: dict[str, str], schema: pa.Schema | None = None
    ) -> Synthesizer:
        """A new, unfitted ``synthesizer`` for the spec; ``types``: the modelled columns' types,
        ``schema``: the source's."""
        raise NotImplementedError(f"{cls.__name__} does not build its model")

    @classmethod
    def load_model(cls, data: bytes, device: str) -> Synthesizer:
        """The fitted model ``save`` wrote, on ``device``."""
        return cls.synthesizer.load(data, device=device)

    # -- per actor ------------------------------------------------------------------------
    def load(self) -> None:
        import pyarrow as pa

        config = tabular_config(self.spec)
        cache = FitCache(self.context.artifacts, self.context.prepared["model_key"])
        self.meta = cache.meta()
        self.model = self.load_model(cache.model(), self.context.device)
        self.schema = read_schema(self.meta["schema"])
        self.forbidden = {c: set(d) for c, d in self.meta["digests"].items()}
        self.source: pa.Table | None = None
        if config.augment is not None and config.augment.combined:
            self.source = read_table(config.source, self.spec.storage).cast(self.schema)
            self.schema = self.schema.append(pa.field(SYNTHETIC_FLAG, pa.bool_()))
        # warm every code path before the first shard
        warm = self.model.sample(8, 0)
        self._fill_pii(warm, 0)

    def _fill_pii(self, df: pd.DataFrame, seed: int) -> None:
        from synthfactory_workers.tabular.pii import fake_values

        config = tabular_config(self.spec)
        for i, (column, kind) in enumerate(sorted(self.meta["pii"].items())):
            df[column] = fake_values(
                kind,
                len(df),
                seed + i,
                config.pii_locale,
                self.forbidden.get(column, set()),
                self.meta["salt"],
            )

    def _segments(self, shard: ShardTask) -> tuple[int, list[tuple[dict[str, Any], int, int]]]:
        """(source rows first, [(conditions, rows, seed)]) for this shard."""
        import numpy as np

        from synthfactory_workers.tabular.sampling import segments

        config = tabular_config(self.spec)
        if shard.conditions:  # a top-up shard of one class: no source rows, no plan
            return 0, [({**config.conditions, **dict(shard.conditions)}, shard.rows, shard.seed)]
        if config.augment is None:
            return 0, [(dict(config.conditions), shard.rows, shard.seed)]
        offset = self.context.prepared["source_rows"] if config.augment.combined else 0
        start, end = shard.row_start, shard.row_start + shard.rows
        copied = max(0, min(end, offset) - start)
        plan = [(v, n) for v, n in self.context.prepared["balance"]]
        parts = []
        for index, value, rows in segments(max(start, offset) - offset, shard.rows - copied, plan):
            seed = int(np.random.SeedSequence([shard.seed, index]).generate_state(1)[0])
            parts.append(({config.augment.balance: value}, rows, seed))
        return copied, parts

    def generate(self, shard: ShardTask) -> ShardOutput:
        import numpy as np
        import pandas as pd
        import pyarrow as pa

        from synthfactory_workers.tabular.constraints import Checker
        from synthfactory_workers.tabular.sampling import sample_valid

        config = tabular_config(self.spec)
        checker = Checker(  # per shard; uniqueness across shards: see Checker.unique_keys
            list(config.constraints),
            self.meta["types"],
            self.context.prepared.get("constraint_facts", {}),
        )
        copied, parts = self._segments(shard)
        frames, rejected = [], []
        for conditions, rows, seed in parts:
            got = sample_valid(self.model, rows, seed, conditions, checker, self._fill_pii)
            frames.append(got.accepted)
            rejected += got.rejected
        names = [f.name for f in self.schema if f.name != SYNTHETIC_FLAG]
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=names)
        offset = self.context.prepared.get("source_rows", 0) if self.source is not None else 0
        self._fill_ids(df, shard.row_start + copied - offset)
        tables = []
        if copied and self.source is not None:
            tables.append(
                self.source.slice(shard.row_start, copied).append_column(
                    SYNTHETIC_FLAG, pa.array([False] * copied)
                )
            )
        if len(df) or not tables:
            if self.source is not None:
                df[SYNTHETIC_FLAG] = True
            tables.append(to_arrow(df, self.schema))
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        for name, keys in checker.unique_keys(df).items():
            # synthetic rows: 63-bit keys in every shard alike; source rows: the top bit set
            # and their row number, so they never collide
            keys = keys & np.uint64((1 << 63) - 1)
            if copied and self.source is not None:
                start = shard.row_start
                own = np.arange(start, start + copied, dtype=np.uint64) | np.uint64(1 << 63)
                keys = np.concatenate([own, keys])
            table = table.append_column(name, pa.array(keys, pa.uint64()))
        bad = None
        if rejected:
            frame = pd.concat(rejected, ignore_index=True)
            base = pa.schema([f for f in self.schema if f.name != SYNTHETIC_FLAG])
            bad = to_arrow(frame, base).append_column(
                "reason", pa.array(frame["reason"], pa.string())
            )
        rejections = sum(len(r) for r in rejected)
        stats = {
            "candidates": float(len(df) + rejections),
            "constraint_rejections": float(rejections),
        }
        return ShardOutput(table, bad, stats)

    def _fill_ids(self, df: pd.DataFrame, first: int) -> None:
        """Id columns are regenerated from global row numbers, past the source's largest
        id: unique across shards and never a source id."""
        import numpy as np

        for column, start in self.meta["id_start"].items():
            numbers = np.arange(first, first + len(df), dtype=np.int64)
            df[column] = numbers + start if start is not None else [f"syn-{i}" for i in numbers]

    def identity(self) -> dict[str, str]:
        config = tabular_config(self.spec)
        return {
            "generator": config.kind,
            "model": self.context.prepared["model_key"],
            "source": config.source,
        }


def _id_starts(
    df: pd.DataFrame, types: dict[str, str], private: bool = False
) -> dict[str, int | None]:
    """Per id column: the first regenerated number (past the source's largest numeric id;
    under DP from 1, as the source's largest id is not released), or None for text ids
    (regenerated as 'syn-<row>')."""
    import pandas as pd

    out: dict[str, int | None] = {}
    for column, kind in types.items():
        if kind != "id":
            continue
        series = df[column]
        numeric = pd.api.types.is_numeric_dtype(series.dtype) and (private or series.notna().any())
        if not numeric:
            out[column] = None
        else:
            out[column] = 1 if private else int(series.max()) + 1
    return out
