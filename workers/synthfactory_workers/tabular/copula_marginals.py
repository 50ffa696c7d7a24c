"""The pieces of a Gaussian copula: per-column marginals (``Marginal`` for numbers,
frequency ``Intervals`` for categories), normal scores, the correlation of the scores, and
draws from the Gaussian conditioned on some of its dimensions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.jsonsafe import plain
from synthfactory_workers.tabular.column_types import key, value_counts

if TYPE_CHECKING:
    import pandas as pd

EPS = 1e-6
QUANTILES = 1001
PARAMETRIC = ("norm", "beta", "truncnorm", "uniform", "gamma")


def normal_scores(u: np.ndarray) -> np.ndarray:
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
        counts = value_counts(column)
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


def inside(intervals: dict[str, Any], value: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """Normal scores drawn uniformly inside ``value``'s frequency interval."""
    index = [key(v) for v in intervals["values"]].index(key(plain(value)))
    lo, hi = intervals["bounds"][index], intervals["bounds"][index + 1]
    width = hi - lo
    u = lo + width * (0.01 + 0.98 * rng.uniform(0.0, 1.0, n))
    return normal_scores(u)


def correlation(z: np.ndarray, observed: np.ndarray) -> np.ndarray:
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


def conditional_normals(
    correlation: np.ndarray, fixed: dict[int, np.ndarray], n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` rows of normal scores with the dimensions in ``fixed`` set to their values and
    the others drawn from the Gaussian (``correlation``) conditioned on them: with P the
    fixed dimensions and C the rest, z_C | z_P ~ N(S_CP S_PP^-1 z_P, S_CC - S_CP S_PP^-1 S_PC)."""
    d = correlation.shape[0]
    given = sorted(fixed)
    rest = [i for i in range(d) if i not in fixed]
    z = np.empty((n, d))
    if given:
        z[:, given] = np.column_stack([fixed[i] for i in given])
    if rest:
        s = correlation
        s_rest = s[np.ix_(rest, rest)]
        if given:
            s_pp = s[np.ix_(given, given)]
            s_cp = s[np.ix_(rest, given)]
            weights = np.linalg.solve(s_pp, s_cp.T)  # |P| x |C|
            cov = s_rest - s_cp @ weights
            mean = z[:, given] @ weights
        else:
            cov, mean = s_rest, np.zeros((n, len(rest)))
        cov = (cov + cov.T) / 2 + 1e-9 * np.eye(len(rest))
        values, vectors = np.linalg.eigh(cov)
        root = vectors * np.sqrt(np.clip(values, 0, None))
        z[:, rest] = mean + rng.standard_normal((n, len(rest))) @ root.T
    return z
