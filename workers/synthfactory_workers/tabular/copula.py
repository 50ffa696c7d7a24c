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

With ``privacy`` the fit is differentially private (see ``privacy``): every marginal,
missing-value rate and the correlation come out of a noise mechanism, and the model keeps
the budget each one spent (``privacy_budget``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.jsonsafe import plain
from synthfactory_workers.tabular.base import Synthesizer
from synthfactory_workers.tabular.columns import (
    as_float,
    finish_numbers,
    key,
    numeric_summary,
    restore_category,
    restore_numbers,
)

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.spec.generators.tabular import PrivacyConfig

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
        return cls([plain(v) for v, _ in order], bounds.tolist())

    def to_uniform(self, column: pd.Series, rng: np.random.Generator) -> np.ndarray:
        index = {key(v): i for i, v in enumerate(self.values)}
        codes = np.array([index[key(plain(v))] for v in column.astype(object)], dtype=int)
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


class GaussianCopula(Synthesizer):
    name: ClassVar[str] = "gaussian_copula"
    exact_conditions: ClassVar[bool] = True

    def __init__(
        self,
        default_distribution: str = "empirical",
        enforce_min_max: bool = True,
        seed: int = 0,
        privacy: PrivacyConfig | None = None,
        bounds: dict[str, tuple[float, float]] | None = None,
        integers: set[str] | None = None,
    ) -> None:
        self.default_distribution = default_distribution
        self.enforce_min_max = enforce_min_max
        self.seed = seed
        self.privacy = privacy
        self.bounds = bounds or {}
        #: under DP, columns whose (public) source schema is an integer type
        self.integers = integers or set()
        self.privacy_budget: dict[str, Any] | None = None
        self.columns: list[dict[str, Any]] = []
        self.dims: list[dict[str, Any]] = []
        self.correlation = np.eye(0)

    def fit(self, df: pd.DataFrame, column_types: dict[str, str]) -> None:
        import pandas as pd

        if len(df) < 2:
            raise ConfigError("the source table needs at least 2 rows to fit a copula")
        if self.privacy is not None:
            self._fit_private(df, column_types)
            return
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
                x = as_float(series, datetime=kind == "datetime")
                observed = x[~nulls]
                if len(observed) == 0:
                    col["all_null"] = True
                    continue
                marginal = Marginal.fit(observed, self.default_distribution)
                col.update(
                    marginal=marginal.to_dict(),
                    **numeric_summary(observed, datetime=kind == "datetime"),
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

    def _fit_private(self, df: pd.DataFrame, column_types: dict[str, str]) -> None:
        """The DP fit: noisy histograms over public bounds or values, noisy missing-value
        counts, a noisy covariance of clipped normal scores (see ``privacy``)."""
        import pandas as pd

        from synthfactory_workers.tabular import privacy as dp

        config = self.privacy
        assert config is not None
        n = len(df)
        jitter = np.random.default_rng(self.seed)  # public randomness (the proof holds for any)
        noise = dp.noise_rng(config, self.seed)
        modelled = {str(c): column_types[c] for c in df.columns if column_types[c] != "id"}
        plan = dp.plan(config, modelled)
        accountant = dp.Accountant((config.epsilon, config.delta))
        scores: list[np.ndarray] = []
        self.columns, self.dims = [], []
        for name in df.columns:
            series = df[name]
            kind = column_types[name]
            col: dict[str, Any] = {"name": str(name), "type": kind, "dtype": str(series.dtype)}
            self.columns.append(col)
            if kind == "id":
                col["numeric"] = bool(pd.api.types.is_numeric_dtype(series.dtype))
                continue
            if kind in ("numerical", "datetime"):
                x = as_float(series, datetime=kind == "datetime")
                nulls = np.isnan(x)
                lo, hi = self.bounds[str(name)]
                integer = "int" in col["dtype"].lower() or str(name) in self.integers
                observed = np.clip(x[~nulls], lo, hi)
                if integer and hi - lo + 1 <= config.bins:  # one bin per integer
                    edges = np.arange(np.floor(lo), np.ceil(hi) + 1) - 0.5
                    edges = np.concatenate([edges, [edges[-1] + 1]])
                else:
                    edges = np.linspace(lo, hi, config.bins + 1)
                counts = np.histogram(observed, edges)[0].astype(float)
                eps = plan.marginal[str(name)]
                noisy, b = dp.noisy_counts(counts, eps, noise)
                accountant.spend(
                    f"histogram({name})", "laplace", eps, 0.0, 2.0, b, bins=len(counts)
                )
                q = np.clip(dp.quantiles_from_histogram(edges, noisy, QUANTILES), lo, hi)
                marginal = Marginal("empirical", {"quantiles": q.tolist()})
                col.update(
                    marginal=marginal.to_dict(),
                    min=lo,
                    max=hi,
                    integer=integer,
                    decimals=6,
                    **({"step": 1e9} if kind == "datetime" else {}),
                )
                eps = plan.missing[str(name)]
                b = dp.laplace_scale(1.0, eps)
                missing = float(np.clip(nulls.sum() + noise.laplace(0.0, b), 0, n))
                accountant.spend(f"missing_rate({name})", "laplace", eps, 0.0, 1.0, b)
                z = np.zeros(n)  # imputed entries add nothing to the covariance
                z[~nulls] = _normal_scores(marginal.cdf(observed))
                self.dims.append({"column": str(name), "role": "value"})
                scores.append(z)
                rate = missing / n
                if rate > 0:
                    ind = Intervals([False, True], [0.0, 1.0 - rate, 1.0])
                    col["nulls"] = ind.to_dict()
                    self.dims.append({"column": str(name), "role": "null"})
                    scores.append(_normal_scores(ind.to_uniform(pd.Series(nulls), jitter)))
            else:
                enc, codes = _private_intervals(
                    series, kind, config, plan, str(name), noise, accountant
                )
                col["intervals"] = enc.to_dict()
                self.dims.append({"column": str(name), "role": "category"})
                known = codes >= 0
                lo_, hi_ = enc.bounds[np.maximum(codes, 0)], enc.bounds[np.maximum(codes, 0) + 1]
                u = lo_ + (hi_ - lo_) * jitter.uniform(0.0, 1.0, n)
                scores.append(np.where(known, _normal_scores(u), 0.0))
        if plan.correlation is not None and len(scores) >= 2:
            eps, delta = plan.correlation
            self.correlation = dp.noisy_correlation(
                np.column_stack(scores), config.clip, eps, delta, noise, accountant
            )
        else:
            if plan.correlation is not None:  # budgeted, but one dimension: spent all the same
                eps, delta = plan.correlation
                accountant.spend("correlation", "none (one dimension)", eps, delta, 0.0, 0.0)
            self.correlation = np.eye(len(self.dims))
        self.privacy_budget = accountant.budget()

    def categories(self, column: dict[str, Any]) -> list[Any]:
        return list(column["intervals"]["values"]) if "intervals" in column else []

    def _sample(self, n: int, seed: int, conditions: dict[str, Any]) -> pd.DataFrame:
        from scipy.special import ndtr

        rng = np.random.default_rng(seed)
        d = len(self.dims)
        if conditions:
            u = ndtr(self._conditional_scores(n, rng, conditions))
        else:
            chol = np.linalg.cholesky(self.correlation) if d else np.eye(0)
            u = ndtr(rng.standard_normal((n, d)) @ chol.T) if d else np.empty((n, 0))
        return self._decode(u, n, conditions)

    def sample_given(self, given: pd.DataFrame, seed: int) -> pd.DataFrame:
        """One row per row of ``given``, conditioned on *that row's* values of the columns
        ``given`` holds (per-row conditions, drawn in one batch).

        In normal-score space, with P the given dimensions and C the rest, the draw is
        z_C | z_P ~ N(S_CP S_PP^-1 z_P, S_CC - S_CP S_PP^-1 S_PC), S the copula's
        correlation. z_P comes from each given value through its marginal: the CDF's normal
        score for numbers, a uniform draw inside the category's frequency interval for
        categories (as in fitting). A null number, or a category the model never saw, is
        drawn as in fitting (a uniform score: no information). The given columns are
        returned as given."""
        import pandas as pd
        from scipy.special import ndtr, ndtri

        rng = np.random.default_rng(seed)
        n = len(given)
        position = {(dim["column"], dim["role"]): i for i, dim in enumerate(self.dims)}
        fixed: dict[int, np.ndarray] = {}
        for name in given.columns:
            col = self.column(str(name))
            series = given[name]
            if col["type"] == "id" or col.get("all_null"):
                continue
            if col["type"] in ("numerical", "datetime"):
                x = as_float(series, datetime=col["type"] == "datetime")
                nulls = np.isnan(x)
                marginal = Marginal(col["marginal"]["kind"], col["marginal"]["params"])
                u = rng.uniform(0.0, 1.0, n)
                if (~nulls).any():
                    u[~nulls] = marginal.cdf(x[~nulls])
                fixed[position[(str(name), "value")]] = _normal_scores(u)
                if "nulls" in col:
                    ind = Intervals(col["nulls"]["values"], col["nulls"]["bounds"])
                    fixed[position[(str(name), "null")]] = _normal_scores(
                        ind.to_uniform(pd.Series(nulls), rng)
                    )
            else:
                enc = col["intervals"]
                index = {key(v): i for i, v in enumerate(enc["values"])}
                codes = np.array(
                    [index.get(key(plain(v)), -1) for v in series.astype(object)], dtype=int
                )
                bounds = np.asarray(enc["bounds"])
                known = codes >= 0
                lo = np.where(known, bounds[np.maximum(codes, 0)], 0.0)
                hi = np.where(known, bounds[np.maximum(codes, 0) + 1], 1.0)
                u = lo + (hi - lo) * (0.01 + 0.98 * rng.uniform(0.0, 1.0, n))
                fixed[position[(str(name), "category")]] = np.asarray(
                    ndtri(np.clip(u, EPS, 1 - EPS))
                )
        d = len(self.dims)
        given_dims = sorted(fixed)
        rest = [i for i in range(d) if i not in fixed]
        z = np.empty((n, d))
        if given_dims:
            z[:, given_dims] = np.column_stack([fixed[i] for i in given_dims])
        if rest:
            s = self.correlation
            s_rest = s[np.ix_(rest, rest)]
            if given_dims:
                s_pp = s[np.ix_(given_dims, given_dims)]
                s_cp = s[np.ix_(rest, given_dims)]
                weights = np.linalg.solve(s_pp, s_cp.T)  # |P| x |C|
                cov = s_rest - s_cp @ weights
                mean = z[:, given_dims] @ weights
            else:
                cov, mean = s_rest, np.zeros((n, len(rest)))
            cov = (cov + cov.T) / 2 + 1e-9 * np.eye(len(rest))
            values, vectors = np.linalg.eigh(cov)
            root = vectors * np.sqrt(np.clip(values, 0, None))
            z[:, rest] = mean + rng.standard_normal((n, len(rest))) @ root.T
        out = self._decode(np.asarray(ndtr(z)), n, {})
        for name in given.columns:
            out[name] = given[name].to_numpy()
        return out

    def _decode(self, u: np.ndarray, n: int, conditions: dict[str, Any]) -> pd.DataFrame:
        """Rows from uniforms ``u`` (one column per copula dimension)."""
        import pandas as pd

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
                x = finish_numbers(x, col, self.enforce_min_max)
                mask = np.zeros(n, dtype=bool)
                if "nulls" in col:
                    ind = Intervals(col["nulls"]["values"], col["nulls"]["bounds"])
                    mask = ind.from_uniform(u[:, position[(name, "null")]]).astype(bool)
                if name in conditions:
                    x, mask = np.full(n, float(conditions[name])), np.zeros(n, dtype=bool)
                data[name] = restore_numbers(x, mask, col)
            else:
                enc = Intervals(col["intervals"]["values"], col["intervals"]["bounds"])
                values = enc.from_uniform(u[:, position[(name, "category")]])
                data[name] = restore_category(values, col)
        return pd.DataFrame(data, columns=[c["name"] for c in self.columns])

    def _conditional_scores(
        self, n: int, rng: np.random.Generator, conditions: dict[str, Any]
    ) -> np.ndarray:
        """Normal scores with the conditioned dimensions fixed and the others drawn from
        the Gaussian conditioned on them (exact conditioning of the copula)."""
        from scipy.special import ndtri

        position = {(dim["column"], dim["role"]): i for i, dim in enumerate(self.dims)}
        fixed: dict[int, np.ndarray] = {}
        for name, value in conditions.items():
            col = self.column(name)
            if col["type"] in ("numerical", "datetime"):
                marginal = Marginal(col["marginal"]["kind"], col["marginal"]["params"])
                u = float(np.clip(marginal.cdf(np.array([float(value)]))[0], EPS, 1 - EPS))
                fixed[position[(name, "value")]] = np.full(n, float(ndtri(u)))
                if "nulls" in col:  # a conditioned value is never null
                    fixed[position[(name, "null")]] = _inside(col["nulls"], False, n, rng)
            else:
                fixed[position[(name, "category")]] = _inside(col["intervals"], value, n, rng)
        given = sorted(fixed)
        rest = [i for i in range(len(self.dims)) if i not in fixed]
        z = np.empty((n, len(self.dims)))
        z_given = np.column_stack([fixed[i] for i in given])
        z[:, given] = z_given
        if rest:
            s = self.correlation
            s_cc = s[np.ix_(given, given)]
            s_rc = s[np.ix_(rest, given)]
            weights = np.linalg.solve(s_cc, s_rc.T)  # |C| x |R|
            cov = s[np.ix_(rest, rest)] - s_rc @ weights
            cov = (cov + cov.T) / 2 + 1e-9 * np.eye(len(rest))
            values, vectors = np.linalg.eigh(cov)
            root = vectors * np.sqrt(np.clip(values, 0, None))
            z[:, rest] = z_given @ weights + rng.standard_normal((n, len(rest))) @ root.T
        return z

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
                "privacy_budget": self.privacy_budget,
            }
        ).encode()

    @classmethod
    def load(cls, data: bytes) -> GaussianCopula:
        raw = json.loads(data)
        model = cls(raw["default_distribution"], raw["enforce_min_max"], raw["seed"])
        model.columns, model.dims = raw["columns"], raw["dims"]
        model.privacy_budget = raw.get("privacy_budget")
        model.correlation = np.asarray(raw["correlation"], dtype=float).reshape(
            len(model.dims), len(model.dims)
        )
        return model


def _private_intervals(
    series: pd.Series,
    kind: str,
    config: PrivacyConfig,
    plan: Any,
    name: str,
    noise: np.random.Generator,
    accountant: Any,
) -> tuple[Intervals, np.ndarray]:
    """Noisy frequency intervals of a categorical column, and each row's code in them (-1:
    a value that was not released). Values: the public list (booleans: False/True), else
    the source's values whose noisy count clears the threshold; null is always public."""
    import math

    from synthfactory_workers.tabular import privacy as dp

    objects = [plain(v) for v in series.astype(object).where(series.notna(), None)]
    row_keys = [key(v) for v in objects]
    public: list[Any]
    if name in config.categories:
        public, open_ = [plain(v) for v in config.categories[name]], False
    elif kind == "boolean":
        dtype = str(series.dtype).lower()
        if "bool" in dtype:
            public = [False, True]
        elif "int" in dtype or "float" in dtype:
            public = [0, 1]
        else:
            public = ["false", "true", "False", "True", "FALSE", "TRUE"]
        open_ = False
    else:
        public, open_ = [], True
    domain: list[Any] = []
    seen: set[str] = set()
    for value in [*public, None] if not open_ else [*objects, None]:
        if key(value) not in seen:
            seen.add(key(value))
            domain.append(value)
    if open_:  # the source's values, in a data-independent order; null last
        domain = [*sorted((v for v in domain if v is not None), key=key), None]
    counts_by_key: dict[str, int] = {}
    for k in row_keys:
        counts_by_key[k] = counts_by_key.get(k, 0) + 1
    counts = np.array([counts_by_key.get(key(v), 0) for v in domain], dtype=float)
    eps = plan.marginal[name]
    noisy, b = dp.noisy_counts(counts, eps, noise)
    if open_:
        delta = plan.threshold_delta[name]
        tau = 1.0 + b * math.log(1.0 / delta)
        keep = noisy > tau
        keep[-1] = True  # null is public: never thresholded
        accountant.spend(f"counts({name})", "laplace_threshold", eps, delta, 2.0, b, threshold=tau)
    else:
        keep = np.ones(len(domain), dtype=bool)
        accountant.spend(f"counts({name})", "laplace", eps, 0.0, 2.0, b, values=len(domain))
    kept = [(v, c) for v, c, k in zip(domain, noisy, keep, strict=True) if k and c > 0]
    if not kept:  # nothing survived the noise: every released value equally likely
        kept = [(v, 1.0) for v, k in zip(domain, keep, strict=True) if k]
    kept.sort(key=lambda vc: (-vc[1], key(vc[0])))
    freq = np.array([c for _, c in kept]) / sum(c for _, c in kept)
    bounds = np.concatenate([[0.0], np.cumsum(freq)])
    bounds[-1] = 1.0
    enc = Intervals([v for v, _ in kept], bounds.tolist())
    index = {key(v): i for i, (v, _) in enumerate(kept)}
    codes = np.array([index.get(k, -1) for k in row_keys], dtype=int)
    return enc, codes


def _inside(intervals: dict[str, Any], value: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """Normal scores drawn uniformly inside ``value``'s frequency interval."""
    from scipy.special import ndtri

    index = [key(v) for v in intervals["values"]].index(key(plain(value)))
    lo, hi = intervals["bounds"][index], intervals["bounds"][index + 1]
    width = hi - lo
    u = lo + width * (0.01 + 0.98 * rng.uniform(0.0, 1.0, n))
    return np.asarray(ndtri(np.clip(u, EPS, 1 - EPS)))


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
