"""Sequential synthesis: whole entities, each a context and a sequence of steps.

The method (PAR-style; Zhang et al., "Sequential Models in the Synthetic Data Vault", 2022):

- The source's rows are grouped into entities by ``sequence_key`` and ordered by
  ``sequence_index`` (``synthfactory.sequences``). The context columns are given, or found:
  every column constant within every entity.
- Per entity, a Gaussian copula (``copula.GaussianCopula``) models the context columns
  jointly with the entity's length (a step, inverted-CDF marginal, so sampled lengths take
  the source's lengths) and, with an index, its first index value.
- The steps come from ``par.StepModel``: a GRU over the entity's past steps, started from and
  fed the entity's context; within a step, the time since the previous step first, then
  the step columns one after another. The sampled length ends the sequence. The index is
  the first value plus the running sum of the gaps, at the source's precision.
- Fit once (``prepare``): copula and GRU are saved under ``sequential/<hash>/`` in the
  artifact store, keyed by the source's fingerprint and the fit's settings; every actor
  loads them (the GRU on the actor's GPU when it has one).
- A shard is ``shard.rows`` entities, each written whole: ``data/entities/`` (one row per
  entity: key, context, length) and ``data/sequences/`` (every step, the source's columns).
  Entity i of a shard draws everything from its own seed, derived from the shard's seed and
  i, so shards depend only on the spec and the seed, never on the actors.
- Keys are generated, never copied: integer keys count on from past the source's largest
  (``row_start`` + i: global entity numbers, unique across shards), text keys are
  ``<shard>-<i>`` (relational's scheme, ``relational.keys_for``). Context columns detected
  as ids are regenerated the same way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.sequences import in_order, index_kind, index_numbers
from synthfactory.sources import fingerprint, read_table
from synthfactory.spec.generators.sequential import (
    ENTITIES,
    LENGTH_COLUMN,
    SEQUENCES,
    SequentialConfig,
)
from synthfactory_workers.contract import Generator, ShardOutput, ShardTask
from synthfactory_workers.tabular.fit_cache import FitCache
from synthfactory_workers.tabular.sequential_checks import check_source, column_names, context_of

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from synthfactory.spec import JobSpec
    from synthfactory.storage import ObjectStore

LENGTH = "__length"
START = "__start"
#: entities whose steps are sampled in one network batch
SAMPLE_BATCH = 4096


def _config(spec: JobSpec) -> SequentialConfig:
    if not isinstance(spec.generator, SequentialConfig):
        raise ConfigError(f"generator kind {spec.generator.kind!r} is not sequential")
    return spec.generator


def model_key(source_print: str, config: SequentialConfig) -> str:
    fit = config.model_dump(mode="json", exclude={"source", "device"})
    blob = json.dumps([source_print, fit], sort_keys=True)
    return f"sequential/{hashlib.sha256(blob.encode()).hexdigest()[:24]}"


@dataclass
class Design:
    """The source as the two models see it."""

    context: list[str]
    """Context columns the copula models (context ids are regenerated instead)."""
    context_ids: list[str]
    steps: list[str]
    """Step columns (neither key, index nor context), in source order."""
    types: dict[str, str]
    entities: pd.DataFrame
    """One row per entity: context columns, ``__length``, (``__start``)."""
    step_frame: pd.DataFrame
    """Every step, entity after entity: (``__gap``), the step columns."""
    lengths: np.ndarray


def design(config: SequentialConfig, df: pd.DataFrame) -> Design:
    """Entities in key order, each entity's steps in index order (see the module docstring)."""
    import pandas as pd

    from synthfactory.column_detection import detect_types
    from synthfactory_workers.tabular.par import GAP, MAX_GAP_VALUES

    key, index = config.sequence_key, config.sequence_index
    df = in_order(df, key, index)
    context = context_of(config, df)
    steps = [c for c in column_names(df) if c not in (key, index, *context)]
    overrides: dict[str, str] = dict(config.column_types)
    types = detect_types(df[[*context, *steps]], overrides)
    groups = df.groupby(key, sort=True, dropna=False)
    lengths = groups.size().to_numpy().astype(np.int64)
    firsts = groups.head(1).reset_index(drop=True)
    modelled = [c for c in context if types[c] != "id"]
    entities = firsts[modelled].copy()
    entities[LENGTH] = lengths
    step_frame = df[steps].reset_index(drop=True)
    if index is not None:
        numbers = index_numbers(df[index])
        entities[START] = index_numbers(firsts[index])
        gaps = np.diff(numbers, prepend=np.nan)
        first = np.zeros(len(df), dtype=bool)
        first[np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)] = True
        later = gaps[~first]
        if len(later):
            gaps[first] = float(np.quantile(later, 0.5, method="lower"))  # masked in training
            step_frame.insert(0, GAP, gaps)
            distinct = len(np.unique(later))
            types[GAP] = "categorical" if distinct <= MAX_GAP_VALUES else "numerical"
    return Design(
        context=modelled,
        context_ids=[c for c in context if types[c] == "id"],
        steps=steps,
        types={**types, LENGTH: "numerical", START: "numerical"},
        entities=entities.reset_index(drop=True),
        step_frame=pd.DataFrame(step_frame).reset_index(drop=True),
        lengths=lengths,
    )


def key_start(series: pd.Series) -> int | None:
    """The first generated integer key (past the source's largest), None for text keys."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return int(np.floor(float(series.max()))) + 1
    return None


def entity_seeds(shard: ShardTask) -> np.ndarray:
    """One 63-bit seed per entity of the shard, from the shard's seed."""
    if shard.rows == 0:
        return np.zeros(0, dtype=np.uint64)
    state = np.random.SeedSequence([shard.seed, 0x5E9]).generate_state(shard.rows, np.uint64)
    return np.asarray(state >> np.uint64(1))


def _schemas(source: pa.Schema, key: str, context: list[str]) -> dict[str, pa.Schema]:
    import pyarrow as pa

    entity_fields = [source.field(key), *(source.field(c) for c in context)]
    return {
        ENTITIES: pa.schema([*entity_fields, pa.field(LENGTH_COLUMN, pa.int64())]),
        SEQUENCES: source,
    }


class SequentialGenerator(Generator):
    """Whole entities per shard; see the module docstring."""

    @classmethod
    def preflight(cls, spec: JobSpec) -> dict[str, str]:
        from synthfactory_workers.tabular.checks import check_has_values

        config = _config(spec)
        df = read_table(config.source, spec.storage).to_pandas()
        check_has_values(df, config.source, "generator.source")
        check_source(config, df)
        return {"source_sha256": fingerprint(config.source, spec.storage)}

    @classmethod
    def prepare(cls, spec: JobSpec, artifacts: ObjectStore) -> dict[str, Any]:
        """Fit the context copula and the step GRU once (or reuse the cached fit)."""
        from synthfactory_workers.devices import resolve_device
        from synthfactory_workers.tabular.arrow_io import schema_text
        from synthfactory_workers.tabular.copula import GaussianCopula
        from synthfactory_workers.tabular.par import StepModel
        from synthfactory_workers.tabular.relational import step_marginals

        config = _config(spec)
        cache = FitCache(artifacts, model_key(fingerprint(config.source, spec.storage), config))
        reused = cache.exists()
        if reused:
            meta = cache.meta()
        else:
            table = read_table(config.source, spec.storage)
            df = table.to_pandas()
            check_source(config, df)
            fit = design(config, df)
            entity_types = {str(c): fit.types[str(c)] for c in fit.entities.columns}
            copula = GaussianCopula("empirical", config.enforce_min_max, config.fit_seed)
            copula.fit(fit.entities, entity_types)
            step_marginals(copula, fit.entities, [LENGTH])
            model = StepModel(
                {
                    "epochs": config.epochs,
                    "hidden_size": config.hidden_size,
                    "batch_size": config.batch_size,
                    "learning_rate": config.learning_rate,
                },
                config.fit_seed,
                resolve_device(config.device, field="generator.device"),
            )
            step_types = {str(c): fit.types[str(c)] for c in fit.step_frame.columns}
            model.fit(fit.entities, entity_types, fit.step_frame, step_types, fit.lengths)
            index = config.sequence_index
            numbers = index_numbers(df[index]) if index else np.zeros(0)
            meta = {
                "context": fit.context,
                "context_ids": fit.context_ids,
                "steps": fit.steps,
                "types": fit.types,
                "key_start": key_start(df[config.sequence_key]),
                "id_starts": {c: key_start(df[c]) for c in fit.context_ids},
                "max_length": int(fit.lengths.max()),
                "index": _index_summary(df[index], numbers) if index else None,
                "schema": schema_text(table.schema.remove_metadata()),
                "training": model.history[-1:] if model.history else [],
            }
            cache.save({"context": copula.save(), "steps": model.save()}, meta)
        return {"model_key": cache.key, "reused": reused, "training": meta["training"]}

    # -- per actor ------------------------------------------------------------------------
    def load(self) -> None:
        from synthfactory_workers.devices import resolve_device
        from synthfactory_workers.tabular.arrow_io import read_schema
        from synthfactory_workers.tabular.copula import GaussianCopula
        from synthfactory_workers.tabular.par import StepModel

        config = _config(self.spec)
        cache = FitCache(self.context.artifacts, self.context.prepared["model_key"])
        self.meta = cache.meta()
        self.copula = GaussianCopula.load(cache.model("context"))
        device = resolve_device(config.device, self.context.device, "generator.device")
        self.model = StepModel.load(cache.model("steps"), device)
        source = read_schema(self.meta["schema"])
        context = [c for c in source.names if c in self.meta["context"] + self.meta["context_ids"]]
        self.schemas = _schemas(source, config.sequence_key, context)
        self.generate(ShardTask(0, 0, 2, 0))  # warm every code path

    def sample_entities(self, shard: ShardTask) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(entities, steps) of a shard: every entity with its own seed's draws."""
        import pandas as pd
        from scipy.special import ndtr

        from synthfactory_workers.tabular.par import GAP
        from synthfactory_workers.tabular.relational import keys_for

        config = _config(self.spec)
        n = shard.rows
        rngs = [np.random.default_rng(int(s)) for s in entity_seeds(shard)]
        d = len(self.copula.dims)
        z = np.array([rng.standard_normal(d) for rng in rngs]).reshape(n, d)
        chol = np.linalg.cholesky(self.copula.correlation) if d else np.eye(0)
        context = self.copula.decode(np.asarray(ndtr(z @ chol.T)), n, {})
        lengths = np.nan_to_num(context[LENGTH].to_numpy(dtype=float), nan=1.0)
        lengths = np.clip(np.round(lengths), 1, self.meta["max_length"]).astype(np.int64)
        context[LENGTH] = lengths
        width = self.model.noise_width
        noise = [
            rng.random((int(length), width)) for rng, length in zip(rngs, lengths, strict=True)
        ]
        parts = []
        for start in range(0, n, SAMPLE_BATCH):
            end = min(n, start + SAMPLE_BATCH)
            sampled = self.model.sample(
                context.iloc[start:end].reset_index(drop=True), lengths[start:end], noise[start:end]
            )
            parts.append(
                self.model.step_codec.decode(
                    sampled.scores, sampled.nulls, sampled.codes, config.enforce_min_max
                )
            )
        steps = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        keys = keys_for(self.meta["key_start"], shard, n, root=True)
        entities = pd.DataFrame({config.sequence_key: keys})
        for column in self.meta["context"]:
            entities[column] = context[column].to_numpy()
        for column, start in self.meta["id_starts"].items():
            entities[column] = keys_for(start, shard, n, root=True)
        entities[LENGTH_COLUMN] = lengths
        owner = np.repeat(np.arange(n), lengths)
        out = pd.DataFrame({config.sequence_key: keys[owner]})
        for column in [*self.meta["context"], *self.meta["id_starts"]]:
            out[column] = entities[column].to_numpy()[owner]
        index = config.sequence_index
        if index is not None:
            gaps = np.zeros(len(owner))
            if GAP in steps.columns:
                gaps = steps[GAP].to_numpy(dtype=float).copy()
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
            gaps[starts] = 0.0
            first = context[START].to_numpy(dtype=float)[owner]
            out[index] = _restore_index(first + _running_sum(gaps, lengths), self.meta["index"])
        for column in self.meta["steps"]:
            out[column] = steps[column].to_numpy() if len(steps) else []
        return entities, out

    def generate(self, shard: ShardTask) -> ShardOutput:
        from synthfactory_workers.tabular.arrow_io import to_arrow

        entities, steps = self.sample_entities(shard)
        tables = {
            ENTITIES: to_arrow(entities, self.schemas[ENTITIES]),
            SEQUENCES: to_arrow(steps, self.schemas[SEQUENCES]),
        }
        stats = {f"rows_{name}": float(len(t)) for name, t in tables.items()}
        return ShardOutput(tables[ENTITIES], None, stats, tables)

    def identity(self) -> dict[str, str]:
        config = _config(self.spec)
        return {
            "generator": config.kind,
            "synthesizer": "par",
            "model": self.context.prepared["model_key"],
            "source": config.source,
        }


def _running_sum(gaps: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per step, the sum of its entity's gaps up to and including it."""
    total = np.cumsum(gaps)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    before = np.repeat(total[starts] - gaps[starts], lengths)
    return np.asarray(total - before)


def _index_summary(series: pd.Series, numbers: np.ndarray) -> dict[str, Any]:
    from synthfactory_workers.tabular.column_types import numeric_summary

    datetime = index_kind(series) == "datetime"
    return {
        "type": "datetime" if datetime else "numerical",
        "dtype": str(series.dtype),
        **numeric_summary(numbers, datetime=datetime),
    }


def _restore_index(x: np.ndarray, summary: dict[str, Any]) -> pd.Series:
    """Index values at the source's precision and dtype (never clipped to its range: a
    sequence may run past the source's last time)."""
    from synthfactory_workers.tabular.column_types import finish_numbers, restore_numbers

    return restore_numbers(
        finish_numbers(x, summary, enforce_min_max=False), np.zeros(len(x), dtype=bool), summary
    )
