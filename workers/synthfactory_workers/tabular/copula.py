"""Gaussian copula synthesizer (Patki, Wedge & Veeramachaneni, "The Synthetic Data Vault", 2016).

Each column is mapped to a standard normal score through its own marginal:

- numerical and datetime columns: the CDF of an empirical (interpolated quantile) or a fitted
  parametric distribution;
- categorical and boolean columns: the "frequency interval" transform: category k owns the
  interval [a_k, b_k) of [0, 1) with width equal to its frequency, and a value is mapped to a
  uniform draw inside its interval;
- missing values: a column with nulls gets an extra 0/1 indicator dimension in the copula, so
  missingness keeps its rate and its correlation with other columns.

The correlation of the normal scores (made positive definite) is the copula. Sampling draws
correlated normals, maps them back through each marginal's inverse and restores dtypes,
precision and ranges. The fitted model is plain JSON.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory_workers.tabular.base import Synthesizer

if TYPE_CHECKING:
    import pandas as pd

EPS = 1e-6
QUANTILES = 1001
PARAMETRIC = ("norm", "beta", "truncnorm", "uniform", "gamma")


def _normal_scores(u: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return np.asarray(ndtri(np.clip(u, EPS, 1 - EPS)))


class Marginal:
    """A 1-D distribution: ``cdf`` for fitting, ``ppf`` for sampling."""

    def __init__(self, kind: str, params: dict[str, Any]) -> None:
        self.kind = kind
        self.params = params

    @classmethod
    def fit(cls, x: np.ndarray, kind: str) -> Marginal:
        if kind == "empirical" or len(np.unique(x)) < 3:
            q = np.quantile(x, np.linspace(0, 1, QUANTILES))
            return cls("empirical", {"quantiles": q.tolist()})
        if kind == "auto":
            from scipy import stats

            best = min(
                (cls.fit(x, k) for k in PARAMETRIC),
                key=lambda m: stats.kstest(x, m.cdf).statistic,
            )
            return best
        from scipy import stats

        lo, hi = float(x.min()), float(x.max())
        span = max(hi - lo, 1e-12)
        if kind == "norm":
            params = dict(zip(("loc", "scale"), stats.norm.fit(x), strict=True))
        elif kind == "uniform":
            params = {"loc": lo, "scale": span}
        elif kind == "beta":
            a, b, _, _ = stats.beta.fit(x, floc=lo - 1e-3 * span, fscale=span * 1.002)
            params = {"a": a, "b": b, "loc": lo - 1e-3 * span, "scale": span * 1.002}
        elif kind == "truncnorm":
            mu, sd = float(x.mean()), float(x.std() or 1.0)
            params = {"a": (lo - mu) / sd, "b": (hi - mu) / sd, "loc": mu, "scale": sd}
        elif kind == "gamma":
            a, loc, scale = stats.gamma.fit(x, floc=lo - 1e-3 * span)
            params = {"a": a, "loc": loc, "scale": scale}
        else:
            raise ConfigError(f"unknown distribution {kind!r}", fix=f"use one of {PARAMETRIC}")
        return cls(kind, {k: float(v) for k, v in params.items()})

    def _dist(self) -> Any:
        from scipy import stats

        return getattr(stats, self.kind)(**self.params)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "empirical":
            q = np.asarray(self.params["quantiles"])
            grid = np.linspace(0, 1, len(q))
            # ties: average of the leftmost and rightmost position of equal quantiles
            left = np.interp(x, q, grid, left=0.0, right=1.0)
            right = 1.0 - np.interp(-x, -q[::-1], grid, left=0.0, right=1.0)
            return np.asarray((left + right) / 2)
        return np.asarray(self._dist().cdf(x))

    def ppf(self, u: np.ndarray) -> np.ndarray:
        if self.kind == "empirical":
            q = np.asarray(self.params["quantiles"])
            return np.interp(u, np.linspace(0, 1, len(q)), q)
        return np.asarray(self._dist().ppf(np.clip(u, EPS, 1 - EPS)))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.params}


class Intervals:
    """The frequency-interval encoding of a categorical column (nulls are a category)."""

    def __init__(self, values: list[Any], bounds: list[float]) -> None:
        self.values = values
        self.bounds = np.asarray(bounds)  # len(values) + 1, from 0 to 1

    @classmethod
    def fit(cls, column: pd.Series) -> Intervals:
        counts = column.astype(object).where(column.notna(), None).value_counts(dropna=False)
        order = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        freq = np.array([c for _, c in order], dtype=float) / len(column)
        bounds = np.concatenate([[0.0], np.cumsum(freq)])
        bounds[-1] = 1.0
        return cls([_plain(v) for v, _ in order], bounds.tolist())

    def to_uniform(self, column: pd.Series, rng: np.random.Generator) -> np.ndarray:
        index = {(_key(v)): i for i, v in enumerate(self.values)}
        codes = np.array([index[_key(_plain(v))] for v in column.astype(object)], dtype=int)
        lo, hi = self.bounds[codes], self.bounds[codes + 1]
        return np.asarray(lo + (hi - lo) * rng.uniform(0.0, 1.0, len(codes)))

    def from_uniform(self, u: np.ndarray) -> np.ndarray:
        codes = np.clip(np.searchsorted(self.bounds, u, side="right") - 1, 0, len(self.values) - 1)
        out = np.empty(len(u), dtype=object)
        values = np.array([*self.values, None], dtype=object)[:-1]
        out[:] = values[codes]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.values, "bounds": self.bounds.tolist()}


def _plain(value: Any) -> Any:
    """JSON-friendly scalar: numpy types to Python, NaN/NA to None."""
    if value is None:
        return None
    try:
        if value != value:  # NaN
            return None
    except (TypeError, ValueError):
        return None
    return value.item() if hasattr(value, "item") else value


def _key(value: Any) -> str:
    return json.dumps(value, default=str)


def _decimals(values: np.ndarray) -> int:
    """Decimal places the source uses (at most 6)."""
    sample = values[:2000]
    for places in range(7):
        if np.allclose(sample, np.round(sample, places), rtol=0, atol=1e-9):
            return places
    return 6


class GaussianCopula(Synthesizer):
    name: ClassVar[str] = "gaussian_copula"

    def __init__(
        self, default_distribution: str = "empirical", enforce_min_max: bool = True, seed: int = 0
    ) -> None:
        self.default_distribution = default_distribution
        self.enforce_min_max = enforce_min_max
        self.seed = seed
        self.columns: list[dict[str, Any]] = []
        self.dims: list[dict[str, Any]] = []
        self.correlation = np.eye(0)

    def fit(self, df: pd.DataFrame, column_types: dict[str, str]) -> None:
        import pandas as pd

        if len(df) < 2:
            raise ConfigError("the source table needs at least 2 rows to fit a copula")
        rng = np.random.default_rng(self.seed)
        scores: list[np.ndarray] = []
        observed_masks: list[np.ndarray] = []
        self.columns, self.dims = [], []
        for name in df.columns:
            series = df[name]
            kind = column_types[name]
            col: dict[str, Any] = {"name": str(name), "type": kind, "dtype": str(series.dtype)}
            self.columns.append(col)
            if kind == "id":
                col["numeric"] = bool(pd.api.types.is_numeric_dtype(series.dtype))
                continue
            nulls = series.isna().to_numpy()
            if kind in ("numerical", "datetime"):
                x = _as_float(series)
                observed = x[~nulls]
                if len(observed) == 0:
                    col["all_null"] = True
                    continue
                marginal = Marginal.fit(observed, self.default_distribution)
                col.update(
                    marginal=marginal.to_dict(),
                    min=float(observed.min()),
                    max=float(observed.max()),
                    integer=bool(np.allclose(observed, np.round(observed))),
                    decimals=_decimals(observed),
                )
                u = np.empty(len(x))
                u[~nulls] = marginal.cdf(observed)
                u[nulls] = rng.uniform(0, 1, int(nulls.sum()))
                self.dims.append({"column": str(name), "role": "value"})
                scores.append(_normal_scores(u))
                observed_masks.append(~nulls)
                if nulls.any():
                    ind = Intervals.fit(pd.Series(nulls))
                    col["nulls"] = ind.to_dict()
                    self.dims.append({"column": str(name), "role": "null"})
                    scores.append(_normal_scores(ind.to_uniform(pd.Series(nulls), rng)))
                    observed_masks.append(np.ones(len(x), dtype=bool))
            else:  # categorical, boolean, text: frequency intervals, nulls included
                enc = Intervals.fit(series)
                col["intervals"] = enc.to_dict()
                self.dims.append({"column": str(name), "role": "category"})
                scores.append(_normal_scores(enc.to_uniform(series, rng)))
                observed_masks.append(np.ones(len(series), dtype=bool))
        if scores:
            self.correlation = _correlation(
                np.column_stack(scores), np.column_stack(observed_masks)
            )
        else:
            self.correlation = np.eye(0)

    def sample(self, n: int, seed: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        import pandas as pd
        from scipy.special import ndtr

        if conditions:
            raise ConfigError(
                "the Gaussian copula does not support conditions yet",
                fix="remove the conditions from the spec",
            )
        rng = np.random.default_rng(seed)
        d = len(self.dims)
        chol = np.linalg.cholesky(self.correlation) if d else np.eye(0)
        u = ndtr(rng.standard_normal((n, d)) @ chol.T) if d else np.empty((n, 0))
        position = {(dim["column"], dim["role"]): i for i, dim in enumerate(self.dims)}
        data: dict[str, Any] = {}
        for col in self.columns:
            name, kind = col["name"], col["type"]
            if kind == "id":
                data[name] = None  # filled in by the caller from global row numbers
            elif col.get("all_null"):
                data[name] = pd.Series([None] * n, dtype=col["dtype"] if n else "object")
            elif kind in ("numerical", "datetime"):
                marginal = Marginal(col["marginal"]["kind"], col["marginal"]["params"])
                x = marginal.ppf(u[:, position[(name, "value")]])
                if self.enforce_min_max:
                    x = np.clip(x, col["min"], col["max"])
                x = np.round(x) if col["integer"] else np.round(x, col["decimals"])
                mask = np.zeros(n, dtype=bool)
                if "nulls" in col:
                    ind = Intervals(col["nulls"]["values"], col["nulls"]["bounds"])
                    mask = ind.from_uniform(u[:, position[(name, "null")]]).astype(bool)
                data[name] = _restore(x, mask, col)
            else:
                enc = Intervals(col["intervals"]["values"], col["intervals"]["bounds"])
                values = enc.from_uniform(u[:, position[(name, "category")]])
                data[name] = _restore_category(values, col)
        return pd.DataFrame(data, columns=[c["name"] for c in self.columns])

    def save(self) -> bytes:
        return json.dumps(
            {
                "synthesizer": self.name,
                "default_distribution": self.default_distribution,
                "enforce_min_max": self.enforce_min_max,
                "seed": self.seed,
                "columns": self.columns,
                "dims": self.dims,
                "correlation": self.correlation.tolist(),
            }
        ).encode()

    @classmethod
    def load(cls, data: bytes) -> GaussianCopula:
        raw = json.loads(data)
        model = cls(raw["default_distribution"], raw["enforce_min_max"], raw["seed"])
        model.columns, model.dims = raw["columns"], raw["dims"]
        model.correlation = np.asarray(raw["correlation"], dtype=float).reshape(
            len(model.dims), len(model.dims)
        )
        return model


def _as_float(series: pd.Series) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return np.asarray(series.astype("int64").astype(float).where(series.notna(), np.nan))
    return np.asarray(pd.to_numeric(series, errors="coerce").astype(float))


def _restore(x: np.ndarray, nulls: np.ndarray, col: dict[str, Any]) -> pd.Series:
    import pandas as pd

    dtype = col["dtype"]
    if col["type"] == "datetime":
        values = pd.Series(x.astype("int64")).astype(dtype)
        return values.mask(nulls)
    series = pd.Series(x)
    if "int" in dtype.lower():
        series = series.astype("Int64") if nulls.any() or dtype[0] == "I" else series.astype(dtype)
        return series.mask(nulls) if nulls.any() else series
    return series.mask(nulls).astype(dtype if "float" in dtype.lower() else "float64")


def _restore_category(values: np.ndarray, col: dict[str, Any]) -> pd.Series:
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


def _correlation(z: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Pairwise-complete correlation of normal scores (imputed entries of a column with
    nulls are left out), made positive definite with unit diagonal."""
    d = z.shape[1]
    corr = np.eye(d)
    for i in range(d):
        for j in range(i + 1, d):
            both = observed[:, i] & observed[:, j]
            if both.sum() < 3:
                continue
            a, b = z[both, i], z[both, j]
            if a.std() == 0 or b.std() == 0:
                continue
            corr[i, j] = corr[j, i] = float(np.corrcoef(a, b)[0, 1])
    values, vectors = np.linalg.eigh(corr)
    fixed = vectors @ np.diag(np.clip(values, 1e-6, None)) @ vectors.T
    scale = np.sqrt(np.diag(fixed))
    return np.asarray(fixed / np.outer(scale, scale))
