"""The differentially private fit of the Gaussian copula (``privacy`` set; the mechanisms
and the budget are in ``dp``): noisy histograms over public bounds or values, noisy
missing-value counts, a noisy covariance of clipped normal scores. Every statistic the
model keeps comes out of one mechanism, recorded by the ``Accountant``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.jsonsafe import plain
from synthfactory_workers.tabular import dp
from synthfactory_workers.tabular.column_types import NUMERIC_TYPES, described, key
from synthfactory_workers.tabular.copula_marginals import (
    QUANTILES,
    Intervals,
    Marginal,
    normal_scores,
)

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.spec.generators.tabular import PrivacyConfig


@dataclass
class PrivateFit:
    """A private fit: what the copula keeps (columns, dimensions, correlation) and the
    budget each mechanism spent."""

    columns: list[dict[str, Any]]
    dims: list[dict[str, Any]]
    correlation: np.ndarray
    budget: dict[str, Any]


@dataclass
class _Fit:
    """What the columns of one private fit share: the budget, its noise, the public
    randomness (jitter) that places rows inside their intervals (the proof holds for any),
    and the public bounds and integer columns."""

    config: PrivacyConfig
    plan: dp.Plan
    accountant: dp.Accountant
    noise: np.random.Generator
    jitter: np.random.Generator
    rows: int
    bounds: dict[str, tuple[float, float]]
    integers: set[str]
    dims: list[dict[str, Any]]
    scores: list[np.ndarray]

    def add(self, column: str, role: str, scores: np.ndarray) -> None:
        self.dims.append({"column": column, "role": role})
        self.scores.append(scores)


def fit_private(
    df: pd.DataFrame,
    column_types: dict[str, str],
    config: PrivacyConfig,
    seed: int,
    bounds: dict[str, tuple[float, float]],
    integers: set[str],
) -> PrivateFit:
    """The copula fitted on ``df`` under ``config``'s budget; ``bounds``: the public range
    of every numerical column, ``integers``: columns of an integer type in the source's
    (public) schema."""
    modelled = {str(c): column_types[c] for c in df.columns if column_types[c] != "id"}
    fit = _Fit(
        config,
        dp.plan(config, modelled),
        dp.Accountant((config.epsilon, config.delta)),
        dp.noise_rng(config, seed),
        np.random.default_rng(seed),
        len(df),
        bounds,
        integers,
        [],
        [],
    )
    columns = described(df, column_types)
    for series, col in columns:
        name, kind = col["name"], col["type"]
        if kind == "id":
            continue
        if kind in NUMERIC_TYPES:
            _numbers(fit, col, series)
        else:
            enc, codes = _private_intervals(series, kind, fit, name)
            col["intervals"] = enc.to_dict()
            known = codes >= 0
            lo_, hi_ = enc.bounds[np.maximum(codes, 0)], enc.bounds[np.maximum(codes, 0) + 1]
            u = lo_ + (hi_ - lo_) * fit.jitter.uniform(0.0, 1.0, fit.rows)
            fit.add(str(name), "category", np.where(known, normal_scores(u), 0.0))
    correlation = _correlation(fit)
    return PrivateFit([col for _, col in columns], fit.dims, correlation, fit.accountant.budget())


def _numbers(fit: _Fit, col: dict[str, Any], series: pd.Series) -> None:
    """A numerical column: its noisy histogram as the marginal, its noisy missing rate."""
    import pandas as pd

    from synthfactory_workers.tabular.column_types import as_float

    name, kind, config = col["name"], col["type"], fit.config
    x = as_float(series, datetime=kind == "datetime")
    nulls = np.isnan(x)
    lo, hi = fit.bounds[name]
    integer = "int" in col["dtype"].lower() or name in fit.integers
    observed = np.clip(x[~nulls], lo, hi)
    if integer and hi - lo + 1 <= config.bins:  # one bin per integer
        edges = np.arange(np.floor(lo), np.ceil(hi) + 1) - 0.5
        edges = np.concatenate([edges, [edges[-1] + 1]])
    else:
        edges = np.linspace(lo, hi, config.bins + 1)
    counts = np.histogram(observed, edges)[0].astype(float)
    eps = fit.plan.marginal[name]
    noisy, b = dp.noisy_counts(counts, eps, fit.noise)
    fit.accountant.spend(f"histogram({name})", "laplace", eps, 0.0, 2.0, b, bins=len(counts))
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
    eps = fit.plan.missing[name]
    b = dp.laplace_scale(1.0, eps)
    missing = float(np.clip(nulls.sum() + fit.noise.laplace(0.0, b), 0, fit.rows))
    fit.accountant.spend(f"missing_rate({name})", "laplace", eps, 0.0, 1.0, b)
    z = np.zeros(fit.rows)  # imputed entries add nothing to the covariance
    z[~nulls] = normal_scores(marginal.cdf(observed))
    fit.add(name, "value", z)
    rate = missing / fit.rows
    if rate > 0:
        ind = Intervals([False, True], [0.0, 1.0 - rate, 1.0])
        col["nulls"] = ind.to_dict()
        fit.add(name, "null", normal_scores(ind.to_uniform(pd.Series(nulls), fit.jitter)))


def _correlation(fit: _Fit) -> np.ndarray:
    """The noisy correlation of the normal scores (budgeted even with one dimension)."""
    if fit.plan.correlation is not None and len(fit.scores) >= 2:
        eps, delta = fit.plan.correlation
        return dp.noisy_correlation(
            np.column_stack(fit.scores), fit.config.clip, eps, delta, fit.noise, fit.accountant
        )
    if fit.plan.correlation is not None:  # budgeted, but one dimension: spent all the same
        eps, delta = fit.plan.correlation
        fit.accountant.spend("correlation", "none (one dimension)", eps, delta, 0.0, 0.0)
    return np.eye(len(fit.dims))


def _public_values(
    series: pd.Series, kind: str, config: PrivacyConfig, name: str
) -> list[Any] | None:
    """A categorical column's public list of values (booleans: False/True in the source's
    spelling), or None: its released values are the source's that clear the threshold."""
    if name in config.categories:
        return [plain(v) for v in config.categories[name]]
    if kind != "boolean":
        return None
    dtype = str(series.dtype).lower()
    if "bool" in dtype:
        return [False, True]
    if "int" in dtype or "float" in dtype:
        return [0, 1]
    return ["false", "true", "False", "True", "FALSE", "TRUE"]


def _domain(public: list[Any] | None, objects: list[Any]) -> list[Any]:
    """The values counted: the public ones, else the source's in a data-independent order;
    null (always public) last."""
    domain: list[Any] = []
    seen: set[str] = set()
    for value in [*public, None] if public is not None else [*objects, None]:
        if key(value) not in seen:
            seen.add(key(value))
            domain.append(value)
    if public is None:
        domain = [*sorted((v for v in domain if v is not None), key=key), None]
    return domain


def _private_intervals(
    series: pd.Series, kind: str, fit: _Fit, name: str
) -> tuple[Intervals, np.ndarray]:
    """Noisy frequency intervals of a categorical column, and each row's code in them (-1:
    a value that was not released). Values: the public list (booleans: False/True), else
    the source's values whose noisy count clears the threshold; null is always public."""
    objects = [plain(v) for v in series.astype(object).where(series.notna(), None)]
    row_keys = [key(v) for v in objects]
    public = _public_values(series, kind, fit.config, name)
    domain = _domain(public, objects)
    counts_by_key: dict[str, int] = {}
    for k in row_keys:
        counts_by_key[k] = counts_by_key.get(k, 0) + 1
    counts = np.array([counts_by_key.get(key(v), 0) for v in domain], dtype=float)
    eps = fit.plan.marginal[name]
    noisy, b = dp.noisy_counts(counts, eps, fit.noise)
    if public is None:
        delta = fit.plan.threshold_delta[name]
        tau = 1.0 + b * math.log(1.0 / delta)
        keep = noisy > tau
        keep[-1] = True  # null is public: never thresholded
        fit.accountant.spend(
            f"counts({name})", "laplace_threshold", eps, delta, 2.0, b, threshold=tau
        )
    else:
        keep = np.ones(len(domain), dtype=bool)
        fit.accountant.spend(f"counts({name})", "laplace", eps, 0.0, 2.0, b, values=len(domain))
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
