"""A column kind added from outside the platform, as the README shows: ``kind: upper``
upper-cases an earlier column. One config (what it reads and writes) and one worker (how it
computes, its Arrow type), tied by one registration (``register_upper``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from synthfactory.spec.columns import COLUMNS, ColumnBase
from synthfactory_workers.text.kinds.base import ColumnKind, Row, RowError

if TYPE_CHECKING:
    import pyarrow as pa


class UpperColumn(ColumnBase):
    """An earlier column's text in capitals."""

    kind: Literal["upper"] = Field("upper", description="Upper-cases a column.")
    column: str = Field(description="The earlier column to upper-case.")

    def reads(self) -> set[str]:
        return {self.column}


class Upper(ColumnKind):
    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        return {self.name: pa.string()}

    def compute(self, ci: int, row: Row, seed: int, stats: dict[str, float]) -> None:
        value = row.ctx.get(self.column.column)
        if not isinstance(value, str):
            raise RowError(f"not_text: {self.column.column} is {value!r}")
        row.set(self.name, value.upper())


def register_upper() -> None:
    """The one registration: ``kind: upper`` -> this config and worker."""
    COLUMNS.register(f"{__name__}:Upper")(UpperColumn)
