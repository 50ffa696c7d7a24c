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

With ``privacy`` the fit is differentially private (``copula_private``, over ``dp``):
every marginal, missing-value rate and the correlation come out of a noise mechanism, and
the model keeps the budget each one spent (``privacy_budget``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.jsonsafe import plain
from synthfactory.spec.generators.tabular import GaussianCopulaConfig
from synthfactory_workers.tabular.base import Synthesizer
from synthfactory_workers.tabular.column_types import (
    NUMERIC_TYPES,
    as_float,
    described,
    finish_numbers,
    key,
    numeric_summary,
    restore_category,
    restore_numbers,
)
from synthfactory_workers.tabular.copula_marginals import (
    EPS,
    Intervals,
    Marginal,
    conditional_normals,
    correlation,
    inside,
    normal_scores,
)
from synthfactory_workers.tabular.generator import TabularGenerator

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from synthfactory.spec import JobSpec
    from synthfactory.spec.generators.tabular import PrivacyConfig


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
            from synthfactory_workers.tabular.copula_private import fit_private

            fit = fit_private(df, column_types, self.privacy, self.seed, self.bounds, self.integers)
            self.columns, self.dims, self.correlation = fit.columns, fit.dims, fit.correlation
            self.privacy_budget = fit.budget
            return
        rng = np.random.default_rng(self.seed)
        scores: list[np.ndarray] = []
        observed_masks: list[np.ndarray] = []
        columns = described(df, column_types)
        self.columns, self.dims = [col for _, col in columns], []
        for series, col in columns:
            name, kind = col["name"], col["type"]
            if kind == "id":
                continue
            nulls = series.isna().to_numpy()
            if kind in NUMERIC_TYPES:
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
                scores.append(normal_scores(u))
                observed_masks.append(~nulls)
                if nulls.any():
                    ind = Intervals.fit(pd.Series(nulls))
                    col["nulls"] = ind.to_dict()
                    self.dims.append({"column": str(name), "role": "null"})
                    scores.append(normal_scores(ind.to_uniform(pd.Series(nulls), rng)))
                    observed_masks.append(np.ones(len(x), dtype=bool))
            else:  # categorical, boolean, text: frequency intervals, nulls included
                enc = Intervals.fit(series)
                col["intervals"] = enc.to_dict()
                self.dims.append({"column": str(name), "role": "category"})
                scores.append(normal_scores(enc.to_uniform(series, rng)))
                observed_masks.append(np.ones(len(series), dtype=bool))
        if scores:
            self.correlation = correlation(np.column_stack(scores), np.column_stack(observed_masks))
        else:
            self.correlation = np.eye(0)

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
        return self.decode(u, n, conditions)

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
        from scipy.special import ndtr

        rng = np.random.default_rng(seed)
        n = len(given)
        position = self._positions()
        fixed: dict[int, np.ndarray] = {}
        for name in given.columns:
            col = self.column(str(name))
            if col["type"] == "id" or col.get("all_null"):
                continue
            if col["type"] in NUMERIC_TYPES:
                fixed.update(_given_numbers(col, given[name], position, rng))
            else:
                scores = _given_categories(col["intervals"], given[name], rng)
                fixed[position[(str(name), "category")]] = scores
        z = conditional_normals(self.correlation, fixed, n, rng)
        out = self.decode(np.asarray(ndtr(z)), n, {})
        for name in given.columns:
            out[name] = given[name].to_numpy()
        return out

    def _positions(self) -> dict[tuple[str, str], int]:
        """(column, role) -> the copula dimension that holds it."""
        return {(dim["column"], dim["role"]): i for i, dim in enumerate(self.dims)}

    def decode(self, u: np.ndarray, n: int, conditions: dict[str, Any]) -> pd.DataFrame:
        """Rows from uniforms ``u`` (one column per copula dimension)."""
        import pandas as pd

        position = self._positions()
        data: dict[str, Any] = {}
        for col in self.columns:
            name, kind = col["name"], col["type"]
            if kind == "id":
                data[name] = None  # filled in by the caller from global row numbers
            elif col.get("all_null"):
                data[name] = pd.Series([None] * n, dtype=col["dtype"] if n else "object")
            elif kind in NUMERIC_TYPES:
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

        position = self._positions()
        fixed: dict[int, np.ndarray] = {}
        for name, value in conditions.items():
            col = self.column(name)
            if col["type"] in NUMERIC_TYPES:
                marginal = Marginal(col["marginal"]["kind"], col["marginal"]["params"])
                u = float(np.clip(marginal.cdf(np.array([float(value)]))[0], EPS, 1 - EPS))
                fixed[position[(name, "value")]] = np.full(n, float(ndtri(u)))
                if "nulls" in col:  # a conditioned value is never null
                    fixed[position[(name, "null")]] = inside(col["nulls"], False, n, rng)
            else:
                fixed[position[(name, "category")]] = inside(col["intervals"], value, n, rng)
        return conditional_normals(self.correlation, fixed, n, rng)

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
    def load(cls, data: bytes, device: str = "cpu") -> GaussianCopula:
        raw = json.loads(data)
        model = cls(raw["default_distribution"], raw["enforce_min_max"], raw["seed"])
        model.columns, model.dims = raw["columns"], raw["dims"]
        model.privacy_budget = raw.get("privacy_budget")
        model.correlation = np.asarray(raw["correlation"], dtype=float).reshape(
            len(model.dims), len(model.dims)
        )
        return model


def _given_numbers(
    col: dict[str, Any],
    series: pd.Series,
    position: dict[tuple[str, str], int],
    rng: np.random.Generator,
) -> dict[int, np.ndarray]:
    """The normal scores of given numbers (and of their missingness): through the
    marginal's CDF; a null number gets a uniform score, as in fitting."""
    import pandas as pd

    name = col["name"]
    x = as_float(series, datetime=col["type"] == "datetime")
    nulls = np.isnan(x)
    marginal = Marginal(col["marginal"]["kind"], col["marginal"]["params"])
    u = rng.uniform(0.0, 1.0, len(x))
    if (~nulls).any():
        u[~nulls] = marginal.cdf(x[~nulls])
    fixed = {position[(name, "value")]: normal_scores(u)}
    if "nulls" in col:
        ind = Intervals(col["nulls"]["values"], col["nulls"]["bounds"])
        fixed[position[(name, "null")]] = normal_scores(ind.to_uniform(pd.Series(nulls), rng))
    return fixed


def _given_categories(
    intervals: dict[str, Any], series: pd.Series, rng: np.random.Generator
) -> np.ndarray:
    """The normal scores of given categories: a uniform draw inside each value's frequency
    interval; a value the model never saw gets a uniform score (no information)."""
    index = {key(v): i for i, v in enumerate(intervals["values"])}
    codes = np.array([index.get(key(plain(v)), -1) for v in series.astype(object)], dtype=int)
    bounds = np.asarray(intervals["bounds"])
    known = codes >= 0
    lo = np.where(known, bounds[np.maximum(codes, 0)], 0.0)
    hi = np.where(known, bounds[np.maximum(codes, 0) + 1], 1.0)
    u = lo + (hi - lo) * (0.01 + 0.98 * rng.uniform(0.0, 1.0, len(codes)))
    return normal_scores(u)


class CopulaGenerator(TabularGenerator):
    synthesizer: ClassVar[type[GaussianCopula]] = GaussianCopula

    @classmethod
    def new_model(
        cls, spec: JobSpec, types: dict[str, str], schema: pa.Schema | None = None
    ) -> Synthesizer:
        import pyarrow as pa

        from synthfactory_workers.tabular.dp_checks import public_bounds

        config = spec.generator
        assert isinstance(config, GaussianCopulaConfig)
        bounds = public_bounds(config, types) if config.privacy is not None else None
        return GaussianCopula(
            config.default_distribution,
            config.enforce_min_max,
            config.fit_seed,
            privacy=config.privacy,
            bounds=bounds,
            integers={f.name for f in schema or [] if pa.types.is_integer(f.type)},
        )
