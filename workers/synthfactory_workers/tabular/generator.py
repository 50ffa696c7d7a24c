"""The Gaussian copula as a synthfactory generator: fit once per job, sample per shard."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError
from synthfactory.sources import fingerprint, read_table
from synthfactory.spec.tabular import GaussianCopulaConfig
from synthfactory_workers.contract import Generator, ShardOutput, ShardTask

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from synthfactory.spec import JobSpec
    from synthfactory.storage import ObjectStore


def _config(spec: JobSpec) -> GaussianCopulaConfig:
    assert isinstance(spec.generator, GaussianCopulaConfig)
    return spec.generator


def model_key(source_sha256: str, config: GaussianCopulaConfig) -> str:
    """Fitted models are addressed by the source's checksum and the fitting config."""
    blob = json.dumps(
        [source_sha256, config.model_dump(mode="json", exclude={"source"})], sort_keys=True
    )
    return f"gaussian_copula/{hashlib.sha256(blob.encode()).hexdigest()[:24]}.json"


class CopulaGenerator(Generator):
    @classmethod
    def preflight(cls, spec: JobSpec) -> dict[str, str]:
        config = _config(spec)
        table = read_table(config.source, spec.storage)
        unknown = sorted(set(config.column_types) - set(table.column_names))
        if unknown:
            raise ConfigError(
                f"generator.column_types names column(s) not in {config.source}: {unknown}",
                fix=f"use the source's columns: {table.column_names}",
            )
        return {"source_sha256": fingerprint(config.source, spec.storage)}

    @classmethod
    def prepare(cls, spec: JobSpec, artifacts: ObjectStore) -> dict[str, Any]:
        from synthfactory_workers.tabular.copula import GaussianCopula
        from synthfactory_workers.tabular.metadata import detect_types

        config = _config(spec)
        key = model_key(fingerprint(config.source, spec.storage), config)
        if artifacts.exists(key):
            return {"model_key": key, "reused": True}
        table = read_table(config.source, spec.storage)
        df = table.to_pandas()
        types = detect_types(df, dict(config.column_types))
        model = GaussianCopula(config.default_distribution, config.enforce_min_max, seed=spec.seed)
        model.fit(df, types)
        artifacts.put_bytes(key, model.save())
        artifacts.put_text(key.replace(".json", ".schema"), _schema_text(table.schema))
        return {"model_key": key, "reused": False, "column_types": types}

    def load(self) -> None:
        import pyarrow as pa

        from synthfactory_workers.tabular.copula import GaussianCopula

        key = self.context.prepared["model_key"]
        self.model = GaussianCopula.load(self.context.artifacts.get_bytes(key))
        schema_key = key.replace(".json", ".schema")
        self.schema = pa.ipc.read_schema(
            pa.py_buffer(bytes.fromhex(self.context.artifacts.get_text(schema_key)))
        )

        self.generate(ShardTask(0, 0, 8, 0))  # warm every code path before the first shard

    def generate(self, shard: ShardTask) -> ShardOutput:
        df = self.model.sample(shard.rows, shard.seed)
        fill_ids(df, self.model.columns, shard.row_start)
        return ShardOutput(to_arrow(df, self.schema))

    def identity(self) -> dict[str, str]:
        config = _config(self.spec)
        return {
            "generator": "gaussian_copula",
            "model": self.context.prepared["model_key"],
            "source": config.source,
        }


def fill_ids(df: pd.DataFrame, columns: list[dict[str, Any]], row_start: int) -> None:
    """Id columns are regenerated from global row numbers: unique, never copied."""
    import numpy as np

    for col in columns:
        if col["type"] != "id":
            continue
        numbers = np.arange(row_start, row_start + len(df), dtype=np.int64)
        df[col["name"]] = numbers if col.get("numeric") else [f"syn-{i}" for i in numbers]


def to_arrow(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    arrays = []
    for field in schema:
        try:
            arrays.append(pa.array(df[field.name], from_pandas=True).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            arrays.append(
                pa.array(df[field.name].astype(str), from_pandas=True).cast(field.type, safe=False)
            )
    return pa.Table.from_arrays(arrays, schema=schema)


def _schema_text(schema: pa.Schema) -> str:
    return bytes(schema.serialize()).hex()
