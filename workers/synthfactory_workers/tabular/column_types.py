"""The column types every tabular synthesizer and check shares, and a column's values in
and out of a synthesizer: its description, keys of values, numbers from any numeric or
datetime column, the source's precision and range, and the source's dtypes.

The types are the spec's ``ColumnType`` (``generator.column_types``; detected by
``synthfactory.column_detection``): numerical, categorical, boolean, datetime, id, text. Numerical
and datetime columns are modelled as numbers (``NUMERIC_TYPES``); categorical, boolean and
text ones as values; id columns are never modelled (regenerated from row numbers).
"""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.spec.generators.tabular import ColumnType

if TYPE_CHECKING:
    import pandas as pd

#: the types modelled as numbers (a datetime as nanoseconds since the epoch)
NUMERIC_TYPES: tuple[ColumnType, ...] = ("numerical", "datetime")
_ENCODER = json.JSONEncoder(default=str)


def describe(name: Any, series: pd.Series, kind: str) -> dict[str, Any]:
    """A column as every synthesizer describes it: name, type and the source's dtype (an id
    column also says whether its values are numbers)."""
    import pandas as pd

    col: dict[str, Any] = {"name": str(name), "type": kind, "dtype": str(series.dtype)}
    if kind == "id":
        col["numeric"] = bool(pd.api.types.is_numeric_dtype(series.dtype))
    return col


def described(df: pd.DataFrame, column_types: dict[str, str]) -> list[tuple[pd.Series, dict]]:
    """Every column of ``df`` with its description (``describe``), in order."""
    return [(df[c], describe(c, df[c], column_types[c])) for c in df.columns]


def value_counts(series: pd.Series) -> pd.Series:
    """How many rows hold each value of a column, nulls counted as the value None."""
    return series.astype(object).where(series.notna(), None).value_counts(dropna=False)


def observed_numbers(col: dict[str, Any], series: pd.Series) -> np.ndarray | None:
    """A numerical/datetime column's non-null values as floats, with their range and
    precision added to ``col`` (``numeric_summary``); None (and ``all_null`` set) when the
    column holds no number."""
    datetime = col["type"] == "datetime"
    x = as_float(series, datetime=datetime)
    observed = x[~np.isnan(x)]
    if len(observed) == 0:
        col["all_null"] = True
        return None
    col.update(numeric_summary(observed, datetime=datetime))
    return observed


#: datetime resolutions tried, coarsest first (nanoseconds)
DATETIME_STEPS = (86_400e9, 3_600e9, 60e9, 1e9, 1e6, 1e3, 1.0)


def numeric_summary(observed: np.ndarray, datetime: bool = False) -> dict[str, Any]:
    """What sampling needs to give numbers the source's range and precision back
    (for datetimes, the coarsest of day/hour/minute/second/ms/us/ns they all fall on)."""
    out: dict[str, Any] = {
        "min": float(observed.min()),
        "max": float(observed.max()),
        "integer": bool(np.allclose(observed, np.round(observed))),
        "decimals": decimals(observed),
    }
    if datetime:
        sample = observed[:2000]
        out["step"] = next(s for s in DATETIME_STEPS if np.all(np.fmod(sample, s) == 0))
    return out


def finish_numbers(x: np.ndarray, col: dict[str, Any], enforce_min_max: bool) -> np.ndarray:
    """Clip to the source's range (when asked) and round to the source's precision."""
    if enforce_min_max:
        x = np.clip(x, col["min"], col["max"])
    if col.get("step"):
        return np.asarray(np.round(x / col["step"]) * col["step"])
    return np.round(x) if col["integer"] else np.round(x, col["decimals"])


def key(value: Any) -> str:
    """A value's identity as text: exactly ``json.dumps(value, default=str)``, but cheap
    (called per value when fitting; ``json.dumps`` with ``default`` builds an encoder per
    call, which was most of a relational fit's time). Plain strings, numbers, booleans and
    None are spelled here as ``json`` spells them; anything else goes through one encoder."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return _ENCODER.encode(value)


def decimals(values: np.ndarray) -> int:
    """Decimal places the source uses (at most 6)."""
    sample = values[:2000]
    for places in range(7):
        if np.allclose(sample, np.round(sample, places), rtol=0, atol=1e-9):
            return places
    return 6


def as_float(series: pd.Series, datetime: bool = False) -> np.ndarray:
    """Numbers as floats; datetimes (or, with ``datetime``, date strings) as nanoseconds
    since the epoch (UTC); anything unreadable as NaN."""
    import pandas as pd

    if datetime and not pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = pd.Series(pd.to_datetime(series, errors="coerce", format="mixed"))
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        ns = np.asarray(series.dt.as_unit("ns").array.asi8, dtype=float)
        ns[series.isna().to_numpy()] = np.nan
        return ns
    return np.asarray(pd.to_numeric(series, errors="coerce").astype(float))


def restore_numbers(x: np.ndarray, nulls: np.ndarray, col: dict[str, Any]) -> pd.Series:
    import pandas as pd

    dtype = col["dtype"]
    if col["type"] == "datetime":
        return _restore_datetimes(x, nulls, dtype)
    series = pd.Series(x)
    if "int" in dtype.lower():
        series = series.astype("Int64") if nulls.any() or dtype[0] == "I" else series.astype(dtype)
        return series.mask(nulls) if nulls.any() else series
    return series.mask(nulls).astype(dtype if "float" in dtype.lower() else "float64")


def restore_category(values: np.ndarray, col: dict[str, Any]) -> pd.Series:
    import pandas as pd

    series = pd.Series(values, dtype=object)
    dtype = col["dtype"]
    if dtype == "bool" and not series.isna().any():
        return series.astype(bool)
    if dtype in ("bool", "boolean"):
        return series.astype("boolean")
    if "int" in dtype.lower() and not series.isna().any():
        return series.astype(dtype)
    if "int" in dtype.lower():
        return series.astype("Int64")
    if "float" in dtype.lower():
        return series.astype("float64")
    return series.astype("string") if dtype in ("string", "str") else series


def _restore_datetimes(x: np.ndarray, nulls: np.ndarray, dtype: str) -> pd.Series:
    import pandas as pd

    stamps = pd.Series(pd.to_datetime(x.astype("int64"), unit="ns"))
    if not dtype.startswith("datetime64"):  # dates held as text in the source
        midnight = bool((stamps.dt.normalize() == stamps).all())
        text = stamps.dt.strftime("%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M:%S")
        return text.astype(object).mask(nulls, None)
    target = pd.api.types.pandas_dtype(dtype)
    tz = getattr(target, "tz", None)
    if tz is not None:
        stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(tz)
    return stamps.astype(target).mask(nulls)
