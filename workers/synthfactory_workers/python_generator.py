"""Run a user's own generator, named by import path in the spec (``kind: python``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError, GenerationError
from synthfactory.registry import import_object
from synthfactory.spec.generators import PythonGeneratorConfig
from synthfactory_workers.contract import Generator, ShardOutput, ShardTask

if TYPE_CHECKING:
    from synthfactory.spec import JobSpec


class PythonGenerator(Generator):
    """Wraps ``factory(**options)``: an object with ``load()`` and ``generate(shard)``.

    ``generate`` may return a pyarrow Table, a pandas DataFrame or a ShardOutput.
    """

    @classmethod
    def preflight(cls, spec: JobSpec) -> dict[str, str]:
        factory = _config(spec).factory
        if not callable(import_object(factory)):
            raise ConfigError(f"generator.factory {factory!r} is not callable")
        return {}

    def load(self) -> None:
        config = _config(self.spec)
        factory: Any = import_object(config.factory)
        self.impl = factory(**config.options)
        if hasattr(self.impl, "load"):
            self.impl.load()

    def generate(self, shard: ShardTask) -> ShardOutput:
        import pandas as pd
        import pyarrow as pa

        out = self.impl.generate(shard)
        if isinstance(out, ShardOutput):
            return out
        if isinstance(out, pd.DataFrame):
            return ShardOutput(pa.Table.from_pandas(out, preserve_index=False))
        if isinstance(out, pa.Table):
            return ShardOutput(out)
        raise GenerationError(
            f"{_config(self.spec).factory} returned {type(out).__name__}",
            fix="return a pyarrow.Table, a pandas.DataFrame or a ShardOutput",
        )

    def identity(self) -> dict[str, str]:
        return {"generator": "python", "factory": _config(self.spec).factory}


def _config(spec: JobSpec) -> PythonGeneratorConfig:
    assert isinstance(spec.generator, PythonGeneratorConfig)
    return spec.generator
