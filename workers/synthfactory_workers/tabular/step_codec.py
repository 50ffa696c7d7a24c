"""Columns to and from what the sequence model sees, one field per column.

- A numeric field (numerical or datetime column) is its quantile-normal score: the normal
  quantile of the value's position in the column's empirical distribution (1001 quantiles,
  ties averaged), so a heavy-tailed column is modelled as a Gaussian and every value maps
  back inside the source's range. A column with nulls also has a null flag.
- A categorical field (categorical, boolean or text column) is a code into the column's
  values, nulls a value of their own; it enters the network one-hot.

A codec is plain JSON (``to_dict``/``from_dict``) so the fitted model carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.jsonsafe import plain
from synthfactory_workers.tabular.column_types import (
    NUMERIC_TYPES,
    as_float,
    finish_numbers,
    key,
    numeric_summary,
    restore_category,
    restore_numbers,
)
from synthfactory_workers.tabular.copula_marginals import QUANTILES, Marginal, normal_scores

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Encoded:
    """A frame as the network sees it: ``inputs`` (rows x width, float32), and per field
    the training targets: numeric fields (score, null flag), categorical fields (code)."""

    inputs: np.ndarray
    scores: dict[str, np.ndarray]
    nulls: dict[str, np.ndarray]
    codes: dict[str, np.ndarray]


class Codec:
    """The fields of a frame's columns, in column order."""

    def __init__(self, fields: list[dict[str, Any]]) -> None:
        self.fields = fields

    @classmethod
    def fit(cls, df: pd.DataFrame, types: dict[str, str]) -> Codec:
        fields: list[dict[str, Any]] = []
        for name in df.columns:
            series = df[name]
            kind = types[str(name)]
            field: dict[str, Any] = {"name": str(name), "type": kind, "dtype": str(series.dtype)}
            if kind in NUMERIC_TYPES:
                x = as_float(series, datetime=kind == "datetime")
                observed = x[~np.isnan(x)]
                if not len(observed):  # an empty column: a constant the model never varies
                    observed = np.zeros(1)
                    field["all_null"] = True
                field.update(
                    kind="numeric",
                    quantiles=np.quantile(observed, np.linspace(0, 1, QUANTILES)).tolist(),
                    nulls=bool(np.isnan(x).any()),
                    **numeric_summary(observed, datetime=kind == "datetime"),
                )
            else:
                values = [plain(v) for v in series.astype(object).where(series.notna(), None)]
                distinct = sorted({key(v): v for v in values}.items())
                field.update(kind="categorical", values=[v for _, v in distinct])
            fields.append(field)
        return cls(fields)

    @staticmethod
    def width_of(field: dict[str, Any]) -> int:
        """Input columns of a field: a score (and a null flag), or one per category."""
        if field["kind"] == "numeric":
            return 2 if field["nulls"] else 1
        return len(field["values"])

    @property
    def width(self) -> int:
        return sum(self.width_of(f) for f in self.fields)

    def spans(self) -> list[tuple[int, int]]:
        """Each field's [start, end) in the input vector."""
        out, at = [], 0
        for f in self.fields:
            out.append((at, at + self.width_of(f)))
            at += self.width_of(f)
        return out

    def encode(self, df: pd.DataFrame) -> Encoded:
        n = len(df)
        inputs = np.zeros((n, self.width), dtype=np.float32)
        scores: dict[str, np.ndarray] = {}
        nulls: dict[str, np.ndarray] = {}
        codes: dict[str, np.ndarray] = {}
        for field, (start, _) in zip(self.fields, self.spans(), strict=True):
            name = field["name"]
            if field["kind"] == "numeric":
                x = as_float(df[name], datetime=field["type"] == "datetime")
                null = np.isnan(x)
                z = np.zeros(n)
                if (~null).any():
                    marginal = Marginal("empirical", {"quantiles": field["quantiles"]})
                    z[~null] = normal_scores(marginal.cdf(x[~null]))
                scores[name], nulls[name] = z, null.astype(np.int64)
                inputs[:, start] = z
                if field["nulls"]:
                    inputs[:, start + 1] = null
            else:
                index = {key(v): i for i, v in enumerate(field["values"])}
                series = df[name].astype(object).where(df[name].notna(), None)
                code = np.array([index.get(key(plain(v)), 0) for v in series], dtype=np.int64)
                codes[name] = code
                inputs[np.arange(n), start + code] = 1.0
        return Encoded(inputs, scores, nulls, codes)

    def decode(
        self,
        scores: dict[str, np.ndarray],
        nulls: dict[str, np.ndarray],
        codes: dict[str, np.ndarray],
        enforce_min_max: bool,
    ) -> pd.DataFrame:
        """Columns in the source's dtypes from sampled scores, null flags and codes."""
        import pandas as pd
        from scipy.special import ndtr

        data: dict[str, Any] = {}
        for field in self.fields:
            name = field["name"]
            if field["kind"] == "numeric":
                marginal = Marginal("empirical", {"quantiles": field["quantiles"]})
                x = finish_numbers(marginal.ppf(ndtr(scores[name])), field, enforce_min_max)
                null = nulls[name].astype(bool) | bool(field.get("all_null"))
                data[name] = restore_numbers(x, null, field)
            else:
                values = np.empty(len(codes[name]), dtype=object)
                values[:] = [field["values"][c] for c in codes[name]]
                data[name] = restore_category(values, field)
        return pd.DataFrame(data, columns=[f["name"] for f in self.fields])

    def numbers(self, name: str, scores: np.ndarray) -> np.ndarray:
        """A numeric field's values as floats (no rounding or dtype), from scores."""
        from scipy.special import ndtr

        field = next(f for f in self.fields if f["name"] == name)
        return Marginal("empirical", {"quantiles": field["quantiles"]}).ppf(ndtr(scores))

    def to_dict(self) -> dict[str, Any]:
        return {"fields": self.fields}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Codec:
        return cls(list(data["fields"]))
