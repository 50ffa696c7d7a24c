"""Which metric applies to which column: numerical-like or categorical-like."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

NUMERIC = "numerical"
CATEGORICAL = "categorical"


def kind(series: pd.Series) -> str | None:
    """numerical (numbers, datetimes), categorical (strings, bools, few distinct values),
    or None for columns no shape metric applies to (ids, free text, binary)."""
    import pandas as pd

    values = series.dropna()
    if pd.api.types.is_bool_dtype(series.dtype):
        return CATEGORICAL
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_datetime64_any_dtype(
        series.dtype
    ):
        return NUMERIC
    if len(values) and isinstance(values.iloc[0], (bytes, dict, list)):
        return None
    if len(values) and values.nunique() > max(50, 0.5 * len(values)):
        return None  # free text or ids: no meaningful shape to compare
    return CATEGORICAL


def numeric_values(series: pd.Series) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series.dropna().astype("int64").astype(float)
    return pd.to_numeric(series, errors="coerce").dropna().astype(float)
