"""Computed kinds: ``expression`` (a Jinja expression or template over earlier columns) and
``validate`` (a check of an earlier column: JSON Schema, regex, Python, SQL)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError
from synthfactory.spec.columns import as_expression
from synthfactory_workers.text.kinds.base import ColumnKind, PipelineView, Row, RowError, jinja_env

if TYPE_CHECKING:
    import pyarrow as pa

_DTYPES = ("string", "int", "float", "bool")


def cast(value: Any, dtype: str) -> Any:
    """``value`` as the expression's ``dtype`` (a RowError when it cannot be)."""
    if value is None or dtype == "auto":
        return value
    try:
        if dtype == "string":
            return str(value)
        if dtype == "int":
            return int(float(value))
        if dtype == "float":
            return float(value)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes")
        return bool(value)
    except (TypeError, ValueError) as exc:
        raise RowError(f"expression_error: {value!r} is not {dtype}: {exc}") from None


class Expression(ColumnKind):
    def __init__(self, column: Any, pipe: PipelineView | None = None) -> None:
        super().__init__(column, pipe)
        inner = as_expression(column.expr)
        env = jinja_env()
        self.expression: Any = (
            env.compile_expression(inner) if inner is not None else env.from_string(column.expr)
        )

    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        dtype = self.column.dtype
        if dtype == "auto":
            return {}
        types = (pa.string(), pa.int64(), pa.float64(), pa.bool_())
        return {self.name: dict(zip(_DTYPES, types, strict=True))[dtype]}

    def compute(self, ci: int, row: Row, seed: int, stats: dict[str, float]) -> None:
        expression = self.expression
        try:
            value = (
                expression.render(**row.ctx)
                if hasattr(expression, "render")
                else expression(**row.ctx)
            )
        except Exception as exc:  # jinja2 errors, TypeError on None, ...
            raise RowError(f"expression_error: {exc}") from None
        if value is not None and not isinstance(value, str | int | float | bool):
            value = str(value)
        row.set(self.name, cast(value, self.column.dtype))


class Validate(ColumnKind):
    def check(self, where: str, source_columns: list[str] | None) -> None:
        c = self.column
        if c.check == "regex":
            try:
                re.compile(c.pattern or "")
            except re.error as exc:
                raise ConfigError(
                    f"{where}.pattern does not compile: {exc}", fix="fix the regex"
                ) from None
        if c.check == "sql" and c.dialect:
            from sqlglot.dialects.dialect import Dialect

            try:
                Dialect.get_or_raise(c.dialect)
            except ValueError:
                raise ConfigError(
                    f"{where}.dialect {c.dialect!r} is not a sqlglot dialect",
                    fix="use e.g. sqlite, postgres, mysql, duckdb, bigquery",
                ) from None
        if c.check == "json_schema":
            import jsonschema

            jsonschema.Draft202012Validator.check_schema(c.json_schema or {})
        if c.check == "python" and c.run:
            from synthfactory_workers.text import sandbox

            sandbox.require(f"{where}.run")  # model code never runs unconfined

    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        return {self.name: pa.bool_(), f"{self.name}_error": pa.string()}

    def compute(self, ci: int, row: Row, seed: int, stats: dict[str, float]) -> None:
        from synthfactory_workers.text.validators import validate

        c, name = self.column, self.name
        test = None
        if c.test and "{" in c.test:
            try:
                test = jinja_env().from_string(c.test).render(**row.ctx)
            except Exception as exc:  # jinja2 errors
                raise RowError(f"test_error: {exc}") from None
        ok, error = validate(c, row.ctx.get(c.column), test)
        stats[f"validate.{name}.checked"] = stats.get(f"validate.{name}.checked", 0.0) + 1
        stats[f"validate.{name}.passed"] = stats.get(f"validate.{name}.passed", 0.0) + ok
        row.set(name, ok)
        row.set(f"{name}_error", error)
