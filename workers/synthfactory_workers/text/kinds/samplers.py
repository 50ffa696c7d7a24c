"""Sampler kinds: values drawn from the row's seed (``choice``, ``range``, ``uuid``,
``datetime``, ``category_by``, ``person``) or read from the source table (``source``)."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError
from synthfactory.spec.columns import PERSON_FIELDS
from synthfactory_workers.text.kinds.base import ColumnKind, PipelineView, Row, RowError, choose

if TYPE_CHECKING:
    import pyarrow as pa


def value_type(values: list[Any]) -> pa.DataType:
    """int64 when every option is an int, float64 when every one is a number, else string."""
    import pyarrow as pa

    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pa.float64()
    return pa.string()


def _flat(options: list[Any]) -> list[Any]:
    return [v for o in options for v in (o if isinstance(o, list) else list(o))]


class Choice(ColumnKind):
    def arrow_types(self) -> dict[str, pa.DataType]:
        return {self.name: value_type(_flat([self.column.choices]))}

    def compute(self, ci: int, row: Row, seed: int, stats: dict[str, float]) -> None:
        row.set(self.name, choose(self.column.choices, self.rng(seed, row, ci)))


class Range(ColumnKind):
    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        return {self.name: pa.int64() if self.column.integer else pa.float64()}

    def compute(self, ci: int, row: Row, seed: int, stats: dict[str, float]) -> None:
        c, rng = self.column, self.rng(seed, row, ci)
        value: Any = (
            int(rng.integers(math.ceil(c.low), math.floor(c.high) + 1))
            if c.integer
            else float(rng.uniform(c.low, c.high))
        )
        row.set(self.name, value)


class _Text(ColumnKind):
    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        return {self.name: pa.string()}


class UUIDKind(_Text):
    def compute(self, ci: int, row: Row, seed: int, stats: dict[str, float]) -> None:
        rng = self.rng(seed, row, ci)
        row.set(self.name, str(uuid.UUID(bytes=rng.bytes(16), version=4)))


class Datetime(_Text):
    def compute(self, ci: int, row: Row, seed: int, stats: dict[str, float]) -> None:
        c = self.column
        lo = datetime.fromisoformat(c.start).timestamp()
        hi = datetime.fromisoformat(c.end).timestamp()
        stamp = datetime.fromtimestamp(float(self.rng(seed, row, ci).uniform(lo, hi)))
        row.set(self.name, stamp.strftime(c.format))


class CategoryBy(ColumnKind):
    def arrow_types(self) -> dict[str, pa.DataType]:
        c = self.column
        return {self.name: value_type(_flat([*c.choices.values(), c.default or []]))}

    def compute(self, ci: int, row: Row, seed: int, stats: dict[str, float]) -> None:
        c = self.column
        key = row.ctx.get(c.column)
        options = c.choices.get(str(key), c.default)
        if options is None:
            raise RowError(f"no_options: {c.column}={key!r} is not in choices")
        row.set(self.name, choose(options, self.rng(seed, row, ci)))


class Person(ColumnKind):
    def __init__(self, column: Any, pipe: PipelineView | None = None) -> None:
        super().__init__(column, pipe)
        self.fakers: dict[str, Any] = {}

    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        return {
            f"{self.name}.{key}": pa.int64() if key == "age" else pa.string()
            for key in PERSON_FIELDS
        }

    def compute(self, ci: int, row: Row, seed: int, stats: dict[str, float]) -> None:
        person = self.person(self.rng(seed, row, ci))
        row.ctx[self.name] = person
        for key, value in person.items():
            row.out[f"{self.name}.{key}"] = value

    def person(self, rng: Any) -> dict[str, Any]:
        from faker import Faker

        c = self.column
        locale = str(choose(c.locales, rng))
        fake = self.fakers.get(locale)
        if fake is None:
            fake = self.fakers[locale] = Faker(locale)
        fake.seed_instance(int(rng.integers(2**62)))
        sex = str(choose(dict(c.sex), rng))
        first = fake.first_name_female() if sex == "female" else fake.first_name_male()
        last = fake.last_name()
        person = {
            "name": f"{first} {last}",
            "first_name": first,
            "last_name": last,
            "sex": sex,
            "age": int(rng.integers(c.age[0], c.age[1] + 1)),
            "locale": locale,
            "occupation": fake.job(),
            "city": fake.city(),
        }
        assert tuple(person) == PERSON_FIELDS
        return person


class Source(ColumnKind):
    def check(self, where: str, source_columns: list[str] | None) -> None:
        if source_columns is None:
            raise ConfigError(
                f"{where} reads the source table and generator.source is not set",
                fix="set generator.source to a Parquet/CSV/JSONL table",
            )
        if self.column.source_column not in source_columns:
            raise ConfigError(
                f"{where}: {self.column.source_column!r} is not a column of the source",
                fix=f"use one of {source_columns}",
            )

    def arrow_types(self) -> dict[str, pa.DataType]:
        found = self.pipe.source_types.get(self.column.source_column)
        return {} if found is None else {self.name: found}

    def compute(self, ci: int, row: Row, seed: int, stats: dict[str, float]) -> None:
        assert self.pipe.source is not None
        value = self.pipe.source[row.out["source_row"]].get(self.column.source_column)
        row.set(self.name, value)
