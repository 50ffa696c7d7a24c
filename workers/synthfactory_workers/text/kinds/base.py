"""What a column kind's worker is, and the row it fills.

A kind's worker is built once per loaded pipeline (``cls(column, pipe)``), checks what needs
more than the spec at preflight (``check``), names the Arrow type of each field it writes
(``arrow_types``) and computes the column for a batch of rows (``run``; row by row through
``compute`` unless it batches, as LLM columns do). A row it cannot fill is rejected with a
reason (``RowError`` from ``compute``, or ``row.reject``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory.spec.columns import ColumnBase
    from synthfactory.spec.generators.text import LLMConfig
    from synthfactory_workers.contract import ShardTask
    from synthfactory_workers.text.backend import TextBackend
    from synthfactory_workers.text.requests import Requests


@dataclass
class Row:
    index: int
    ctx: dict[str, Any] = field(default_factory=dict)
    out: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    rejected_column: str | None = None

    def reject(self, column: str, reason: str) -> None:
        if self.reason is None:
            self.reason, self.rejected_column = reason, column

    def set(self, name: str, value: Any) -> None:
        """A value later templates see and the data holds under the same name."""
        self.ctx[name] = value
        self.out[name] = value


class RowError(Exception):
    """A value a row cannot have: the row is rejected with this reason."""


class Engine(Protocol):
    """What a pipeline runs on: the generator's config, its backends and its journaled
    requests (``LLMGenerator``)."""

    config: LLMConfig
    requests: Requests

    def backend_for(self, key: str | None) -> TextBackend: ...


class PipelineView(Protocol):
    """What a kind may read of the pipeline it runs in."""

    config: LLMConfig
    engine: Engine
    source: list[dict[str, Any]] | None
    source_types: dict[str, pa.DataType]


class ColumnKind:
    """The worker of one column kind (see the module docstring)."""

    def __init__(self, column: Any, pipe: PipelineView | None = None) -> None:
        """``pipe`` is None at preflight (``check`` only)."""
        self.column = column
        self._pipe = pipe

    @property
    def pipe(self) -> PipelineView:
        assert self._pipe is not None, "a kind built for preflight does not run"
        return self._pipe

    @property
    def name(self) -> str:
        return str(self.column.name)

    def check(self, where: str, source_columns: list[str] | None) -> None:
        """A ConfigError for what the spec alone cannot see (default: nothing)."""

    def arrow_types(self) -> dict[str, pa.DataType]:
        """Arrow type of each field the column writes; a field left out is inferred."""
        return {}

    def run(self, ci: int, rows: list[Row], shard: ShardTask, stats: dict[str, float]) -> None:
        """Fill the column of every row (``ci``: the column's position, part of seeds)."""
        seed = int(shard.seed)
        for row in rows:
            try:
                self.compute(ci, row, seed, stats)
            except RowError as exc:
                row.reject(self.name, str(exc))

    def compute(self, ci: int, row: Row, seed: int, stats: dict[str, float]) -> None:
        raise NotImplementedError(f"{type(self).__name__} computes no single row")

    @staticmethod
    def rng(seed: int, row: Row, ci: int) -> np.random.Generator:
        """The row's generator for this column: same (seed, row, column), same draws."""
        return np.random.default_rng([seed, row.index, ci])


def kind_of(column: ColumnBase, pipe: PipelineView | None = None) -> ColumnKind:
    """The worker of ``column``'s kind (its registered class, imported now)."""
    from synthfactory.spec.columns import COLUMNS

    cls = COLUMNS.load(column.kind)  # type: ignore[attr-defined]
    if not (isinstance(cls, type) and issubclass(cls, ColumnKind)):
        raise TypeError(f"{COLUMNS.path(column.kind)} is not a ColumnKind")  # type: ignore[attr-defined]
    return cls(column, pipe)


def column_seed(shard_seed: int, row: int, column: int, attempt: int) -> int:
    state = np.random.SeedSequence([shard_seed, row, column, attempt, 0x5EED]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


def jinja_env() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def messages(system: str | None, user: str) -> list[dict[str, str]]:
    out = [{"role": "system", "content": system}] if system else []
    out.append({"role": "user", "content": user})
    return out


def choose(choices: Any, rng: np.random.Generator) -> Any:
    if isinstance(choices, dict):
        keys = list(choices)
        weights = np.asarray(list(choices.values()), dtype=float)
        return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]
    return choices[int(rng.integers(len(choices)))]


def json_arrow_type(prop: Any) -> pa.DataType | None:
    """The Arrow type of a JSON Schema property of one scalar ``type`` (None otherwise)."""
    import pyarrow as pa

    kind = prop.get("type") if isinstance(prop, dict) else None
    types = {"string": pa.string, "integer": pa.int64, "number": pa.float64, "boolean": pa.bool_}
    return types[kind]() if isinstance(kind, str) and kind in types else None
