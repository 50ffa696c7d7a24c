"""Column types: detected from the data, overridable in the spec."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

ColumnTypes = dict[str, str]
ID_NAME = re.compile(r"(^|_)(id|uuid|key)$", re.IGNORECASE)


def detect_column_type(name: str, series: pd.Series) -> str:
    """numerical, categorical, boolean, datetime, id or text."""
    import pandas as pd

    values = series.dropna()
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    unique = values.nunique()
    if pd.api.types.is_numeric_dtype(series.dtype):
        is_int = pd.api.types.is_integer_dtype(series.dtype) or bool(
            len(values) and (values == values.round()).all()
        )
        if is_int and ID_NAME.search(name) and unique == len(values):
            return "id"
        if is_int and 0 < unique <= 2 and set(values.unique()) <= {0, 1}:
            return "boolean"
        return "numerical"
    if len(values) and set(values.astype(str).str.lower().unique()) <= {"true", "false"}:
        return "boolean"
    if ID_NAME.search(name) and unique == len(values) and len(values):
        return "id"
    if len(values) and unique > 0.5 * len(values) and values.astype(str).str.len().mean() > 30:
        return "text"
    return "categorical"


def detect_types(df: pd.DataFrame, overrides: ColumnTypes | None = None) -> ColumnTypes:
    overrides = overrides or {}
    return {c: overrides.get(c) or detect_column_type(str(c), df[c]) for c in df.columns}
