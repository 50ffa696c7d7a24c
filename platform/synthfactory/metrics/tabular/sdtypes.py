"""Which metric applies to which column: numerical-like or categorical-like.

SDMetrics reads each column's sdtype from user metadata; we infer it from the dtype:
numbers and datetimes are SDMetrics' continuous sdtypes (``numerical``/``datetime``), strings,
booleans and other low-cardinality objects its discrete ones (``categorical``/``boolean``),
and ids, free text and binary blobs get no shape or pair metric (SDMetrics skips ``id``,
``pii``, ``text`` and other sdtypes the same way). Booleans and categoricals are scored
identically by SDMetrics, as are numericals and datetimes, so two kinds suffice.
"""

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


def as_float(series: pd.Series) -> pd.Series:
    """The column as floats on the same index, NaN for nulls; datetimes as nanoseconds since
    the epoch (UTC for zoned ones; whatever unit they are stored in, so that a real column in
    ``datetime64[ns]`` and a synthetic one in ``datetime64[us]`` compare), and so are dates
    written as text (``"2024-03-01"``) in a column scored as numbers (declared datetime)."""
    import numpy as np
    import pandas as pd
    from pandas.api.types import is_numeric_dtype

    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        ns = series.astype("datetime64[ns]")
        out = pd.Series(ns.to_numpy().astype("int64").astype(float), index=series.index)
        return out.where(ns.notna(), np.nan)
    numbers = pd.to_numeric(series, errors="coerce").astype(float)
    if numbers.isna().all() and series.notna().any() and not is_numeric_dtype(series.dtype):
        # text that is no number: dates written as strings (a CSV's "2024-03-01"), read as
        # datetimes, as SDMetrics does for a column whose metadata says datetime
        dates = pd.to_datetime(series, errors="coerce")
        if dates.notna().any():
            return as_float(dates)
    return numbers


def numeric_values(series: pd.Series) -> pd.Series:
    """The column's non-null values as floats (see ``as_float``)."""
    return as_float(series).dropna()
