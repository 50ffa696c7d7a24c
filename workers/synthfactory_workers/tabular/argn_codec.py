"""TabularARGN's column discretisation (Tiwald et al. 2025, section 3.1): every column
becomes one token per row, so that each column's distribution given any others is a
categorical (softmax) distribution.

- Numbers and datetimes: values that carry more mass than a bin (and every value of a
  column with at most ``bins`` distinct values, e.g. integer codes) are *point* tokens,
  reproduced exactly; the rest fall into up to ``bins`` quantile bins and come back
  uniform within their bin, rounded to the source's precision. Missing values: a token.
- Categorical, boolean and text columns: one token per value seen at least ``rare_min``
  times (missing is a value); rarer values share one *rare* token and come back in
  proportion to their source counts.
- Id columns and columns without values have no token (sampled as nulls).

The fitted codec is plain JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.jsonsafe import plain
from synthfactory_workers.tabular.column_types import (
    NUMERIC_TYPES,
    as_float,
    described,
    finish_numbers,
    key,
    observed_numbers,
    restore_category,
    restore_numbers,
    value_counts,
)

if TYPE_CHECKING:
    import pandas as pd


def fit_columns(
    df: pd.DataFrame, column_types: dict[str, str], bins: int, rare_min: int
) -> list[dict[str, Any]]:
    """Every column's description and token layout (``cardinality`` when modelled)."""
    columns = described(df, column_types)
    for series, col in columns:
        if col["type"] == "id":
            continue
        if col["type"] in NUMERIC_TYPES:
            observed = observed_numbers(col, series)
            if observed is None:
                continue
            col.update(_numeric_tokens(observed, bins))
            col["has_nulls"] = len(observed) < len(series)
            nbins = max(len(col["edges"]) - 1, 0)
            col["cardinality"] = len(col["points"]) + nbins + col["has_nulls"]
        else:
            counts = value_counts(series)
            rare = [v is not None and c < rare_min for v, c in counts.items()]
            order = sorted(
                zip(counts.items(), rare, strict=True),
                key=lambda x: (x[1], -x[0][1], key(plain(x[0][0]))),
            )
            col["categories"] = [plain(v) for (v, _), _ in order]
            col["frequencies"] = [int(c) for (_, c), _ in order]
            kept = len(rare) - sum(rare)  # missing values are never grouped
            col["kept"] = kept  # categories[:kept] are tokens; the rest share the rare one
            col["cardinality"] = kept + (kept < len(order))
    return [col for _, col in columns]


def _numeric_tokens(x: np.ndarray, bins: int) -> dict[str, list[float]]:
    values, counts = np.unique(x, return_counts=True)
    if len(values) <= bins:
        return {"points": values.tolist(), "edges": []}
    points = values[counts >= len(x) / bins]
    rest = x[~np.isin(x, points)]
    edges = np.unique(np.quantile(rest, np.linspace(0, 1, bins + 1 - len(points))))
    if len(edges) < 2:  # every remaining value is one number
        return {"points": sorted({*points.tolist(), float(rest[0])}), "edges": []}
    return {"points": points.tolist(), "edges": edges.tolist()}


def modelled(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The columns the network models (those with tokens), in source order."""
    return [c for c in columns if "cardinality" in c]


def encode(df: pd.DataFrame, columns: list[dict[str, Any]]) -> np.ndarray:
    """(rows, modelled columns) int64 tokens."""
    out = np.zeros((len(df), len(modelled(columns))), dtype=np.int64)
    for j, col in enumerate(modelled(columns)):
        out[:, j] = encode_values(df[col["name"]], col)
    return out


def encode_values(series: pd.Series, col: dict[str, Any]) -> np.ndarray:
    if col["type"] in NUMERIC_TYPES:
        return numeric_tokens(as_float(series, datetime=col["type"] == "datetime"), col)
    index = {key(v): min(i, col["kept"]) for i, v in enumerate(col["categories"])}
    return np.array([index[key(plain(v))] for v in series.astype(object)], dtype=np.int64)


def numeric_tokens(x: np.ndarray, col: dict[str, Any]) -> np.ndarray:
    points = np.asarray(col["points"], dtype=float)
    edges = np.asarray(col["edges"], dtype=float)
    nbins = max(len(edges) - 1, 0)
    tokens = np.zeros(len(x), dtype=np.int64)
    if nbins:
        tokens = len(points) + np.clip(np.searchsorted(edges, x, side="right") - 1, 0, nbins - 1)
    if len(points):
        at = np.clip(np.searchsorted(points, x), 0, len(points) - 1)
        hit = points[at] == x
        if not nbins:  # a value between points (a condition): the nearest point
            below = np.clip(at - 1, 0, len(points) - 1)
            at = np.where(np.abs(points[below] - x) < np.abs(points[at] - x), below, at)
            hit = np.ones(len(x), dtype=bool)
        tokens = np.where(hit, at, tokens)
    nulls = np.isnan(x)
    if nulls.any():
        tokens[nulls] = col["cardinality"] - 1
    return tokens


def decode(
    tokens: np.ndarray,
    columns: list[dict[str, Any]],
    rng: np.random.Generator,
    enforce_min_max: bool,
    fixed: dict[str, Any],
) -> pd.DataFrame:
    """Rows from tokens; ``fixed`` (column -> resolved condition) is written as given."""
    import pandas as pd

    n = len(tokens)
    index = {c["name"]: j for j, c in enumerate(modelled(columns))}
    out: dict[str, Any] = {}
    for col in columns:
        name = col["name"]
        if col["type"] == "id":
            out[name] = None
        elif name not in index:
            out[name] = pd.Series([None] * n, dtype=col["dtype"] if n else "object")
        elif col["type"] in NUMERIC_TYPES:
            out[name] = _decode_numbers(tokens[:, index[name]], col, rng, enforce_min_max, fixed)
        else:
            out[name] = _decode_category(tokens[:, index[name]], col, rng, fixed)
    return pd.DataFrame(out, columns=[c["name"] for c in columns])


def _decode_numbers(
    tokens: np.ndarray,
    col: dict[str, Any],
    rng: np.random.Generator,
    enforce_min_max: bool,
    fixed: dict[str, Any],
) -> pd.Series:
    points = np.asarray(col["points"], dtype=float)
    edges = np.asarray(col["edges"], dtype=float)
    nulls = tokens == col["cardinality"] - 1 if col["has_nulls"] else np.zeros(len(tokens), bool)
    b = np.clip(tokens - len(points), 0, max(len(edges) - 2, 0))
    x = np.zeros(len(tokens))
    if len(edges):
        x = rng.uniform(edges[b], edges[b + 1])
    if len(points):
        x = np.where(tokens < len(points), points[np.minimum(tokens, len(points) - 1)], x)
    x = finish_numbers(x, col, enforce_min_max)
    if col["name"] in fixed:
        x = np.full(len(tokens), float(fixed[col["name"]]))
        nulls = np.zeros(len(tokens), dtype=bool)
    return restore_numbers(x, nulls, col)


def _decode_category(
    tokens: np.ndarray, col: dict[str, Any], rng: np.random.Generator, fixed: dict[str, Any]
) -> pd.Series:
    categories = np.empty(len(col["categories"]), dtype=object)
    categories[:] = col["categories"]
    kept = col["kept"]
    codes = tokens.copy()
    rare = codes >= kept
    if rare.any():
        freq = np.asarray(col["frequencies"][kept:], dtype=float)
        codes[rare] = kept + rng.choice(len(freq), int(rare.sum()), p=freq / freq.sum())
    values = categories[codes]
    if col["name"] in fixed:
        values = np.empty(len(tokens), dtype=object)
        values[:] = [fixed[col["name"]]] * len(tokens)
    return restore_category(values, col)
