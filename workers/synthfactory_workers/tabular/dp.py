"""Differential privacy for the Gaussian copula (DPCopula-style, Li et al. 2014): noisy
marginals, noisy missing-value rates and a noisy correlation of normal scores, with the
budget accounted per released statistic.

Model of privacy: neighbouring tables have the same number of rows and differ in one
row's values ("replace one row"); the row count and the column schema (names, types,
dtypes) are public. Every statistic the fitted model keeps comes out of one mechanism
below, and the mechanisms' (epsilon, delta) add up to the configured budget by basic
(sequential) composition. Everything else the model holds is computed from released
statistics, public bounds or public category lists (post-processing).

Mechanisms (sensitivities under replace-one):

- numerical/datetime marginal: a histogram of ``bins`` equal-width bins over the public
  bounds (values clipped into them); one row moves one unit between two bins, L1
  sensitivity 2: Laplace, b = 2 / epsilon. Noisy counts are clipped at 0; the quantile
  function interpolates the noisy CDF.
- numerical/datetime missing-value count: L1 sensitivity 1: Laplace, b = 1 / epsilon.
- categorical/boolean/text counts (nulls a category): L1 sensitivity 2: Laplace,
  b = 2 / epsilon; clipped at 0 and renormalised. Over a public list of values (booleans:
  always public) this is epsilon-DP. Without one, only the values whose noisy count
  clears tau = 1 + b ln(1 / delta_c) are kept: a value only one of two neighbours has
  (count 1, at most two such values) passes with probability <= exp(-(tau - 1) / b) <=
  delta_c, so the release is (epsilon, delta_c)-DP (stability-based histogram).
- correlation: normal scores clipped to [-c, c] (imputed / unknown entries 0), the upper
  triangle with the diagonal of C = Z^T Z / n; one row changes it by at most
  2 c^2 sqrt(d (d + 1) / 2) / n in L2 (2 c^2 d (d + 1) / 2 / n in L1): Gaussian mechanism,
  sigma = Delta sqrt(2 ln(1.25 / delta)) / epsilon when epsilon <= 1 (Dwork & Roth,
  Thm A.1), the analytic Gaussian mechanism (Balle & Wang 2018) when epsilon > 1, where
  the classical bound does not hold; Laplace when delta is 0. Then normalised by the
  noisy diagonal and projected to the nearest correlation matrix (Higham 2002).

Split: epsilon_corr = correlation_share * epsilon (when there are two columns or more),
the rest equally per modelled column; a numerical column gives missing_share of its slice
to its missing-value count. delta: half to the correlation and half shared equally by the
thresholded categorical columns (all to whichever of the two exists).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory_workers.tabular.column_types import NUMERIC_TYPES

if TYPE_CHECKING:
    from synthfactory.spec.generators.tabular import PrivacyConfig

# -- budget -----------------------------------------------------------------------------------


@dataclass
class Plan:
    """The (epsilon, delta) each mechanism gets, fixed from the schema before any data."""

    epsilon: float
    delta: float
    marginal: dict[str, float]
    missing: dict[str, float]
    threshold_delta: dict[str, float]
    correlation: tuple[float, float] | None


def plan(privacy: PrivacyConfig, types: dict[str, str]) -> Plan:
    """``types``: the modelled columns (no ids, no personal data), in order."""
    columns = list(types)
    eps, delta = privacy.epsilon, privacy.delta
    corr_eps = privacy.correlation_share * eps if len(columns) >= 2 else 0.0
    per_column = (eps - corr_eps) / len(columns) if columns else 0.0
    marginal: dict[str, float] = {}
    missing: dict[str, float] = {}
    for c in columns:
        if types[c] in NUMERIC_TYPES:
            missing[c] = privacy.missing_share * per_column
            marginal[c] = per_column - missing[c]
        else:
            marginal[c] = per_column
    thresholded = [
        c for c in columns if types[c] in ("categorical", "text") and c not in privacy.categories
    ]
    corr_delta = 0.0
    threshold_delta: dict[str, float] = {}
    if delta > 0:
        if corr_eps and thresholded:
            corr_delta = delta / 2
        elif corr_eps:
            corr_delta = delta
        share = (delta - corr_delta) / len(thresholded) if thresholded else 0.0
        threshold_delta = {c: share for c in thresholded}
    return Plan(
        eps,
        delta,
        marginal,
        missing,
        threshold_delta,
        (corr_eps, corr_delta) if corr_eps else None,
    )


@dataclass
class Accountant:
    """What every mechanism spent; ``budget()`` is what the manifest and card state."""

    requested: tuple[float, float]
    mechanisms: list[dict[str, Any]] = field(default_factory=list)

    def spend(
        self,
        statistic: str,
        mechanism: str,
        epsilon: float,
        delta: float,
        sensitivity: float,
        noise_scale: float,
        **extra: Any,
    ) -> None:
        self.mechanisms.append(
            {
                "statistic": statistic,
                "mechanism": mechanism,
                "epsilon": float(epsilon),
                "delta": float(delta),
                "sensitivity": float(sensitivity),
                "noise_scale": float(noise_scale),
                **extra,
            }
        )

    def budget(self) -> dict[str, Any]:
        spent_eps = math.fsum(m["epsilon"] for m in self.mechanisms)
        spent_delta = math.fsum(m["delta"] for m in self.mechanisms)
        out: dict[str, Any] = {
            "epsilon": spent_eps,
            "delta": spent_delta,
            "composition": "basic (sequential): the mechanisms' epsilons and deltas add up",
            "neighbouring": "replace one row (row count and schema public)",
            "mechanisms": self.mechanisms,
        }
        if not math.isclose(spent_delta, self.requested[1], rel_tol=1e-9, abs_tol=1e-15):
            out["delta_requested"] = self.requested[1]  # nothing in this table spends delta
        return out


def noise_rng(privacy: PrivacyConfig, fit_seed: int) -> np.random.Generator:
    """'fit_seed': reproducible (tests, benchmarks); 'secret': from the OS's CSPRNG."""
    if privacy.noise == "fit_seed":
        return np.random.default_rng([fit_seed, 0xD1FF])
    return np.random.default_rng(secrets.randbits(128))


# -- mechanisms -------------------------------------------------------------------------------


def laplace_scale(sensitivity: float, epsilon: float) -> float:
    return sensitivity / epsilon


def classical_gaussian_sigma(sensitivity: float, epsilon: float, delta: float) -> float:
    """Dwork & Roth, Theorem A.1 (valid for epsilon < 1)."""
    return sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon


def analytic_gaussian_delta(sigma: float, sensitivity: float, epsilon: float) -> float:
    """The exact delta of the Gaussian mechanism at (sigma, epsilon) (Balle & Wang 2018,
    Theorem 8): Phi(D/2s - e s/D) - e^e Phi(-D/2s - e s/D)."""
    from scipy.special import log_ndtr, ndtr

    a = sensitivity / (2 * sigma)
    b = epsilon * sigma / sensitivity
    return float(ndtr(a - b) - math.exp(epsilon + float(log_ndtr(-a - b))))


def analytic_gaussian_sigma(sensitivity: float, epsilon: float, delta: float) -> float:
    """The smallest sigma whose exact delta is at most ``delta`` (bisection)."""
    lo, hi = 1e-6 * sensitivity, sensitivity
    while analytic_gaussian_delta(hi, sensitivity, epsilon) > delta:
        hi *= 2
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if analytic_gaussian_delta(mid, sensitivity, epsilon) > delta:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-12:
            break
    return hi


def gaussian_sigma(sensitivity: float, epsilon: float, delta: float) -> tuple[str, float]:
    if epsilon <= 1:
        return "gaussian", classical_gaussian_sigma(sensitivity, epsilon, delta)
    return "gaussian_analytic", analytic_gaussian_sigma(sensitivity, epsilon, delta)


def noisy_counts(
    counts: np.ndarray, epsilon: float, rng: np.random.Generator, sensitivity: float = 2.0
) -> tuple[np.ndarray, float]:
    """Laplace noise on a histogram, clipped at 0; returns (noisy counts, scale b)."""
    b = laplace_scale(sensitivity, epsilon)
    return np.clip(counts + rng.laplace(0.0, b, len(counts)), 0.0, None), b


def quantiles_from_histogram(edges: np.ndarray, counts: np.ndarray, points: int) -> np.ndarray:
    """The quantile function of the piecewise-uniform density a histogram describes."""
    total = counts.sum()
    weights = counts / total if total > 0 else np.full(len(counts), 1 / len(counts))
    cdf = np.concatenate([[0.0], np.cumsum(weights)])
    cdf = (cdf + np.linspace(0, 1e-9, len(cdf))) / (1 + 1e-9)  # strictly increasing
    return np.asarray(np.interp(np.linspace(0, 1, points), cdf, edges))


def nearest_correlation(a: np.ndarray, iterations: int = 200, floor: float = 1e-6) -> np.ndarray:
    """Higham (2002) alternating projections with Dykstra's correction: the nearest
    positive semidefinite matrix with unit diagonal; finished with an eigenvalue floor and
    a rescale so it is positive definite (Cholesky works) with diagonal exactly 1."""
    y = (a + a.T) / 2
    correction = np.zeros_like(y)
    x = y
    for _ in range(iterations):
        r = y - correction
        values, vectors = np.linalg.eigh(r)
        x = (vectors * np.clip(values, 0, None)) @ vectors.T
        correction = x - r
        previous = y
        y = x.copy()
        np.fill_diagonal(y, 1.0)
        if float(np.linalg.norm(y - previous)) < 1e-10 * max(1.0, float(np.linalg.norm(y))):
            break
    values, vectors = np.linalg.eigh((y + y.T) / 2)
    fixed = (vectors * np.clip(values, floor, None)) @ vectors.T
    scale = np.sqrt(np.diag(fixed))
    out = fixed / np.outer(scale, scale)
    np.fill_diagonal(out, 1.0)
    return np.asarray((out + out.T) / 2)


def correlation_sensitivity(d: int, n: int, clip: float, norm: str) -> float:
    """Replace-one sensitivity of the upper triangle (with diagonal) of Z^T Z / n, rows of
    Z clipped to [-clip, clip]^d: one row's outer product has L2 norm over those entries
    at most clip^2 sqrt(d (d + 1) / 2) (L1: clip^2 d (d + 1) / 2); a replacement removes
    one and adds another."""
    entries = d * (d + 1) / 2
    one = clip**2 * (math.sqrt(entries) if norm == "l2" else entries)
    return 2 * one / n


def noisy_correlation(
    z: np.ndarray,
    clip: float,
    epsilon: float,
    delta: float,
    rng: np.random.Generator,
    accountant: Accountant,
) -> np.ndarray:
    n, d = z.shape
    z = np.clip(z, -clip, clip)
    cov = z.T @ z / n
    upper = np.triu_indices(d)
    if delta > 0:
        sensitivity = correlation_sensitivity(d, n, clip, "l2")
        mechanism, scale = gaussian_sigma(sensitivity, epsilon, delta)
        noise = rng.normal(0.0, scale, len(upper[0]))
    else:
        sensitivity = correlation_sensitivity(d, n, clip, "l1")
        mechanism, scale = "laplace", laplace_scale(sensitivity, epsilon)
        noise = rng.laplace(0.0, scale, len(upper[0]))
    accountant.spend(
        "correlation", mechanism, epsilon, delta, sensitivity, scale, dims=d, clip=clip
    )
    noisy = np.zeros((d, d))
    noisy[upper] = cov[upper] + noise
    noisy = noisy + np.triu(noisy, 1).T
    diag = np.clip(np.diag(noisy), 0.05, None)  # post-processing: a usable scale
    corr = np.clip(noisy / np.sqrt(np.outer(diag, diag)), -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return nearest_correlation(corr)


def threshold(privacy: PrivacyConfig, budget: Plan, column: str) -> float:
    """tau of a categorical column without a public list: a value is released only when its
    noisy count clears it (see the module docstring)."""
    b = laplace_scale(2.0, budget.marginal[column])
    return 1.0 + b * math.log(1.0 / budget.threshold_delta[column])
