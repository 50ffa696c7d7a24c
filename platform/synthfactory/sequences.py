"""What a sequential table is: rows grouped into entities by a key column (the
``sequence_key``), ordered within each entity by an index column (the ``sequence_index``:
time or order; without one, the source's row order), and the columns constant within every
entity (its *context*). Pure pandas and numpy: the sequential generator (fitting) and the
sequential metrics share these definitions."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

IndexKind = Literal["numeric", "datetime"]


def index_kind(series: pd.Series) -> IndexKind | None:
    """'numeric' for numbers, 'datetime' for timestamps (or Python dates/datetimes, as
    Arrow's date32 columns arrive), None for anything else (text, booleans)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        return None
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "numeric"
    values = series.dropna()
    if len(values) and all(isinstance(v, _dt.date) for v in values.head(1000)):
        return "datetime"
    return None


def index_numbers(series: pd.Series) -> np.ndarray:
    """An index column as floats: numbers as they are, datetimes as nanoseconds since the
    epoch (UTC). Unreadable values are NaN."""
    import pandas as pd

    if index_kind(series) == "datetime":
        stamps = pd.Series(pd.to_datetime(series, errors="coerce"))
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        ns = stamps.astype("datetime64[ns]").to_numpy().astype("int64").astype(float)
        ns[stamps.isna().to_numpy()] = np.nan
        return np.asarray(ns)
    return np.asarray(pd.to_numeric(series, errors="coerce"), dtype=float)


def in_order(df: pd.DataFrame, key: str, index: str | None) -> pd.DataFrame:
    """Rows grouped by entity (entities in sorted key order), each entity's rows by index
    (stable: equal index values, or no index, keep the source's order)."""
    by = [key] if index is None else [key, index]
    if index is not None and index_kind(df[index]) == "datetime":
        ordered = df.assign(__order=index_numbers(df[index]))
        by = [key, "__order"]
        out = ordered.sort_values(by, kind="stable").drop(columns="__order")
    else:
        out = df.sort_values(by, kind="stable")
    return out.reset_index(drop=True)


def lengths(df: pd.DataFrame, key: str) -> pd.Series:
    """Rows per entity, indexed by key."""
    return df.groupby(key, sort=True, dropna=False).size()


def constant_columns(df: pd.DataFrame, key: str, columns: list[str]) -> list[str]:
    """Those of ``columns`` that take one value (null counts as a value) within every
    entity: the context an entity carries unchanged through its sequence."""
    if not len(df):
        return []
    grouped = df.groupby(key, sort=False, dropna=False)
    return [c for c in columns if int(grouped[c].nunique(dropna=False).max()) <= 1]


def varying_entity(df: pd.DataFrame, key: str, column: str) -> object | None:
    """The first entity (key value) whose ``column`` takes more than one value, or None."""
    counts = df.groupby(key, sort=True, dropna=False)[column].nunique(dropna=False)
    varying = counts[counts > 1]
    return None if varying.empty else varying.index[0]


def entity_table(df: pd.DataFrame, key: str, context: list[str], length: str) -> pd.DataFrame:
    """One row per entity: its key, its context columns (from its first row) and its
    number of rows as ``length``."""
    first = df.groupby(key, sort=True, dropna=False).head(1).set_index(key)
    out = first[context].copy()
    out[length] = lengths(df, key).reindex(out.index).to_numpy()
    return out.reset_index()
