"""Sequential generator configuration: one source table whose rows are the steps of
entities (a ``sequence_key`` column names the entity, a ``sequence_index`` column orders its
steps), synthesised one whole entity at a time.

``rows`` counts **entities**, not steps: the dataset's rows are its entities
(``data/entities/``: key, context columns, sequence length), each written with all its steps
(``data/sequences/``: every source column). Checks the spec alone can refute (the key named
twice) are validators here; those that need the source (unknown columns, the index's type,
a context column that varies within an entity) run in the generator's preflight."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from synthfactory.spec.base import GENERATORS, GeneratorConfigBase
from synthfactory.spec.generators.relational import (
    Relationship,
    TableSource,
    primary_keys_of,
    relationship_keys_of,
)
from synthfactory.spec.generators.tabular import ColumnType

#: the output's tables: one row per entity, and every step of every entity
ENTITIES = "entities"
SEQUENCES = "sequences"
#: the entity table's column holding each entity's number of steps
LENGTH_COLUMN = "sequence_length"


@GENERATORS.register("synthfactory_workers.tabular.sequential:SequentialGenerator")
class SequentialConfig(GeneratorConfigBase):
    """Sequences of steps per entity (PAR-style: Zhang et al. 2022): each entity's context
    and length from a Gaussian copula, its steps from a GRU over its past steps conditioned
    on its context. ``rows`` counts entities; each is written whole with all its steps."""

    modalities: ClassVar[tuple[str, ...]] = ("tabular",)
    path_fields: ClassVar[tuple[str, ...]] = ("source",)
    default_shard_rows: ClassVar[int] = 10_000  # entities (grunfeld-like: ≈ 1 s on one core)

    kind: Literal["sequential"] = Field(
        "sequential", description="Whole sequences of steps per entity (a PAR-style GRU)."
    )
    source: str = Field(
        description="The table of steps: a CSV, Parquet or JSONL file, local path or s3:// URI."
    )
    sequence_key: str = Field(
        description="Column naming the entity a row belongs to (a customer, a firm, a device); "
        "regenerated in the output, never copied."
    )
    sequence_index: str | None = Field(
        None,
        description="Column ordering an entity's steps: numbers or datetimes (modelled as the "
        "first value, then the time since the previous step). Unset: the source's row order.",
    )
    context_columns: list[str] | None = Field(
        None,
        description="Columns constant within each entity (its attributes), modelled once per "
        "entity. Unset: every column that is constant within every entity of the source.",
    )
    column_types: dict[str, ColumnType] = Field(
        default_factory=dict,
        description="Override detected column types, e.g. {zip: categorical}.",
    )
    epochs: int = Field(128, ge=1, le=100_000, description="Training epochs of the GRU.")
    hidden_size: int = Field(64, ge=4, le=4096, description="GRU hidden state size.")
    batch_size: int = Field(32, ge=1, description="Entities per training batch.")
    learning_rate: float = Field(5e-3, gt=0, description="Adam learning rate.")
    max_length: int = Field(
        1000,
        ge=1,
        description="Longest sequence the model accepts: a source entity with more steps is "
        "a preflight error (its steps would be held in memory at once).",
    )
    enforce_min_max: bool = Field(True, description="Clip numbers to the source's range.")
    fit_seed: int = Field(0, ge=0, description="Seed for fitting (part of the model's key).")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where to train and sample: 'auto' uses a GPU when there is one."
    )

    @model_validator(mode="after")
    def _distinct_roles(self) -> SequentialConfig:
        if self.sequence_index is not None and self.sequence_index == self.sequence_key:
            raise ValueError(
                f"sequence_index and sequence_key are both {self.sequence_key!r}: name the "
                "order column in sequence_index and the entity column in sequence_key"
            )
        for column in (self.sequence_key, self.sequence_index):
            if column is not None and column in (self.context_columns or []):
                raise ValueError(
                    f"context_columns lists {column!r}, the sequence key or index: remove it"
                )
        if self.context_columns is not None and len(set(self.context_columns)) != len(
            self.context_columns
        ):
            raise ValueError("context_columns names a column twice")
        return self

    @property
    def tables(self) -> dict[str, TableSource]:
        """The output's tables as the manifest records them (entities keyed by the sequence
        key; the steps reference it)."""
        return {
            ENTITIES: TableSource(source=self.source, primary_key=self.sequence_key),
            SEQUENCES: TableSource(source=self.source, primary_key=None),
        }

    @property
    def relationships(self) -> list[Relationship]:
        """Each step's ``sequence_key`` is its entity's key."""
        return [Relationship(parent=ENTITIES, child=SEQUENCES, foreign_key=self.sequence_key)]

    def primary_keys(self) -> dict[str, str | None]:
        return primary_keys_of(self.tables)

    def relationship_keys(self) -> list[dict[str, str]]:
        return relationship_keys_of(self.relationships)
