"""Constraints on output rows: checked against the source's columns before anything runs,
rounding applied as a transform, everything else enforced by rejecting candidates (each
rejection is counted and kept with its reason)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.jsonsafe import plain
from synthfactory.spec.generators.tabular import (
    Constraint,
    FixedCombinationsConstraint,
    InequalityConstraint,
    RangeConstraint,
    RoundingConstraint,
    UniqueConstraint,
)
from synthfactory_workers.tabular.column_types import NUMERIC_TYPES, as_float, key

if TYPE_CHECKING:
    import pandas as pd


def columns_of(constraint: Constraint) -> list[str]:
    if isinstance(constraint, RangeConstraint | RoundingConstraint):
        return [constraint.column]
    if isinstance(constraint, InequalityConstraint):
        return [constraint.low, constraint.high]
    return list(constraint.columns)


def validate(
    constraints: list[Constraint], types: dict[str, str], personal: set[str] | None = None
) -> None:
    """ConfigError for a constraint naming an unknown column or a column of the wrong type
    (``personal``: the personal-data columns, which get fake values)."""
    personal = personal or set()
    for i, constraint in enumerate(constraints):
        where = f"generator.constraints[{i}] ({constraint.kind})"
        for column in columns_of(constraint):
            if column not in types:
                raise ConfigError(
                    f"{where} names column {column!r}, which is not in the source",
                    fix=f"use the source's columns: {sorted(types)}",
                )
        ordered = isinstance(constraint, RangeConstraint | InequalityConstraint)
        if ordered or isinstance(constraint, RoundingConstraint):
            for column in columns_of(constraint):
                allowed = NUMERIC_TYPES if ordered else ("numerical",)
                if types[column] not in allowed:
                    raise ConfigError(
                        f"{where} needs a {' or '.join(allowed)} column; {column!r} is "
                        f"{types[column]}",
                        fix=f"set generator.column_types.{column} or drop the constraint",
                    )
        if isinstance(constraint, FixedCombinationsConstraint) and any(
            types[c] == "id" or c in personal for c in constraint.columns
        ):
            raise ConfigError(
                f"{where} includes an id or personal-data column, whose values are "
                "regenerated, never taken from the source",
                fix="list only columns that are sampled",
            )
        if isinstance(constraint, InequalityConstraint) and (
            types[constraint.low] != types[constraint.high]
        ):
            raise ConfigError(
                f"{where} compares a {types[constraint.low]} with a {types[constraint.high]}",
                fix="compare two numerical or two datetime columns",
            )


def source_facts(constraints: list[Constraint], df: pd.DataFrame) -> dict[str, list[str]]:
    """What checking needs from the source: the combinations each fixed_combinations
    constraint allows (as keys), by constraint index."""
    facts: dict[str, list[str]] = {}
    for i, constraint in enumerate(constraints):
        if isinstance(constraint, FixedCombinationsConstraint):
            facts[str(i)] = sorted(set(_row_keys(df, constraint.columns)))
    return facts


class Checker:
    """Applies the constraints to candidate rows; remembers unique values across calls."""

    def __init__(
        self,
        constraints: list[Constraint],
        types: dict[str, str],
        facts: dict[str, list[str]],
    ) -> None:
        self.constraints = constraints
        self.types = types
        self.allowed = {int(i): set(keys) for i, keys in facts.items()}
        self.seen: dict[int, set[str]] = {}

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        for constraint in self.constraints:
            if isinstance(constraint, RoundingConstraint):
                column = df[constraint.column]
                if column.dtype.kind == "f":
                    df[constraint.column] = column.round(constraint.digits)
        return df

    def check(self, df: pd.DataFrame) -> np.ndarray:
        """Why each row fails (the first failing constraint), or '' for rows that pass.
        Unique values of passing rows are remembered."""
        reasons = np.full(len(df), "", dtype=object)
        for i, constraint in enumerate(self.constraints):
            ok = self._holds(i, constraint, df, reasons == "")
            reasons[(reasons == "") & ~ok] = _describe(constraint)
        for i, constraint in enumerate(self.constraints):
            columns = [c for c in columns_of(constraint) if self.types.get(c) != "id"]
            if isinstance(constraint, UniqueConstraint) and columns:
                keys = _row_keys(df, columns)
                seen = self.seen.setdefault(i, set())
                seen.update(k for k, r in zip(keys, reasons, strict=True) if r == "")
        return reasons

    def unique_keys(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per ``unique`` constraint, a 64-bit key per row (``__unique_<i>`` sidecar columns):
        the flow's whole-dataset pass drops rows whose key an earlier shard already holds and
        tops the dataset up, so uniqueness holds across shards, not only within one."""
        import pandas as pd

        out: dict[str, np.ndarray] = {}
        for i, constraint in enumerate(self.constraints):
            columns = [c for c in columns_of(constraint) if self.types.get(c) != "id"]
            if isinstance(constraint, UniqueConstraint) and columns:
                keys = np.asarray(_row_keys(df, columns), dtype=object)
                out[f"__unique_{i}"] = (
                    pd.util.hash_array(keys) if len(keys) else np.zeros(0, np.uint64)
                )
        return out

    def _holds(
        self, i: int, constraint: Constraint, df: pd.DataFrame, pending: np.ndarray
    ) -> np.ndarray:
        if isinstance(constraint, RangeConstraint):
            x = self._numbers(df, constraint.column)
            ok = np.ones(len(df), dtype=bool)
            with np.errstate(invalid="ignore"):
                if constraint.min is not None:
                    lo = self._bound(constraint.column, constraint.min)
                    ok &= (x > lo) if constraint.strict else (x >= lo)
                if constraint.max is not None:
                    hi = self._bound(constraint.column, constraint.max)
                    ok &= (x < hi) if constraint.strict else (x <= hi)
            return ok | np.isnan(x)  # a missing value breaks no range
        if isinstance(constraint, InequalityConstraint):
            low = self._numbers(df, constraint.low)
            high = self._numbers(df, constraint.high)
            with np.errstate(invalid="ignore"):
                ok = (low < high) if constraint.strict else (low <= high)
            return np.asarray(ok | np.isnan(low) | np.isnan(high))
        if isinstance(constraint, FixedCombinationsConstraint):
            allowed = self.allowed.get(i, set())
            return np.array([k in allowed for k in _row_keys(df, constraint.columns)], bool)
        if isinstance(constraint, UniqueConstraint):
            columns = [c for c in constraint.columns if self.types.get(c) != "id"]
            ok = np.ones(len(df), dtype=bool)
            if not columns:  # id columns are regenerated unique; nothing else to compare
                return ok
            seen = self.seen.get(i, set())
            batch: set[str] = set()
            for row, k in enumerate(_row_keys(df, columns)):
                if not pending[row]:
                    continue
                ok[row] = k not in seen and k not in batch
                if ok[row]:
                    batch.add(k)
            return ok
        return np.ones(len(df), dtype=bool)  # rounding is a transform

    def _numbers(self, df: pd.DataFrame, column: str) -> np.ndarray:
        return as_float(df[column], datetime=self.types.get(column) == "datetime")

    def _bound(self, column: str, bound: float | str) -> float:
        import pandas as pd

        if self.types.get(column) == "datetime":
            return float(pd.Timestamp(bound).value)
        try:
            return float(bound)
        except ValueError:
            raise ConfigError(
                f"range bound {bound!r} for {column!r} is not a number",
                fix="give a number (or a date for a datetime column)",
            ) from None


def _row_keys(df: pd.DataFrame, columns: list[str]) -> list[str]:
    values = [df[c].astype(object).tolist() for c in columns]
    return [key([plain(v) for v in row]) for row in zip(*values, strict=True)]


def _describe(constraint: Constraint) -> str:
    if isinstance(constraint, RangeConstraint):
        return f"range({constraint.column})"
    if isinstance(constraint, InequalityConstraint):
        op = "<" if constraint.strict else "<="
        return f"inequality({constraint.low} {op} {constraint.high})"
    if isinstance(constraint, FixedCombinationsConstraint):
        return f"fixed_combinations({', '.join(constraint.columns)})"
    if isinstance(constraint, UniqueConstraint):
        return f"unique({', '.join(constraint.columns)})"
    return constraint.kind


def describe_all(constraints: list[Constraint]) -> list[str]:
    return [_describe(c) for c in constraints]
