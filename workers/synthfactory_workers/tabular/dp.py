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
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.spec.generators.tabular import PrivacyConfig, TabularConfigBase

NUMERIC = ("numerical", "datetime")
CATEGORICAL = ("categorical", "boolean", "text")


class PrivacyError(ConfigError):
    """A spec option that would leak the source under generator.privacy."""


class DPUnsupportedSynthesizer(PrivacyError):
    """privacy on a synthesizer with no DP fit (CTGAN, TVAE)."""


class DPSourceConstraint(PrivacyError):
    """A constraint whose allowed values are read from the source (fixed_combinations)."""


class DPAugmentation(PrivacyError):
    """Class balancing reads exact class counts; `combined` writes source rows."""


class DPPiiDetection(PrivacyError):
    """PII detection by content reads values and keeps their digests."""


class DPMissingBounds(PrivacyError):
    """A numerical column without public bounds (they are never taken from the data)."""


class DPMissingCategories(PrivacyError):
    """delta = 0 with a categorical column that has no public list of values."""


class DPParametricMarginal(PrivacyError):
    """A parametric marginal fitted on the raw data."""


class DPSuppressedColumn(PrivacyError):
    """A categorical column without a public list of values whose threshold is at least the
    number of rows fitted: every value would be dropped and the column come out all null."""


class DPAccuracyWarning(UserWarning):
    """The budget leaves a statistic so noisy that the output will visibly suffer (most of a
    categorical column's values dropped, null rates far off), though it can still be fitted."""


# -- preflight ------------------------------------------------------------------------------


def check(config: TabularConfigBase, types: dict[str, str], personal: dict[str, str]) -> None:
    """Every refusal under ``generator.privacy``, each a named PrivacyError with its fix."""
    privacy = config.privacy
    if privacy is None:
        return
    if config.kind != "gaussian_copula":
        raise DPUnsupportedSynthesizer(
            f"generator.privacy is not available for {config.kind}: DP-SGD needs opacus, "
            "which is not a dependency of synthfactory, and no DP training is implemented",
            fix="use kind: gaussian_copula for a differentially private fit, or drop privacy",
        )
    if getattr(config, "default_distribution", "empirical") != "empirical":
        raise DPParametricMarginal(
            "generator.default_distribution fits a parametric family on the raw data, "
            "which is not differentially private",
            fix="drop default_distribution (the DP marginal is a noisy histogram)",
        )
    for constraint in config.constraints:
        if constraint.kind == "fixed_combinations":
            raise DPSourceConstraint(
                "a fixed_combinations constraint keeps the source's combinations of "
                f"{constraint.columns} in clear, which generator.privacy cannot allow",
                fix="drop the constraint, or list the allowed values in "
                "privacy.categories and use range/inequality constraints",
            )
    if config.augment is not None:
        what = (
            "writes the source rows into the output"
            if config.augment.combined
            else ("sizes the job from the source's exact class counts")
        )
        raise DPAugmentation(
            f"generator.augment {what}, which generator.privacy cannot allow",
            fix="drop augment; to get rows of one class use conditions: {label: value}",
        )
    if config.detect_pii and "detect_pii" in config.model_fields_set:
        raise DPPiiDetection(
            "generator.detect_pii reads every value to find personal data and keeps keyed "
            "digests of the source's values, which generator.privacy cannot allow",
            fix="set detect_pii: false and name personal columns in pii_columns (under "
            "privacy content detection is off by default and no digests are kept)",
        )
    modelled = {c: t for c, t in types.items() if c not in personal and t != "id"}
    bounds = public_bounds(config, modelled)
    missing = sorted(c for c, t in modelled.items() if t in NUMERIC and c not in bounds)
    if missing:
        raise DPMissingBounds(
            f"generator.privacy needs public bounds for numerical column(s) {missing}: "
            "bounds are never taken from the data",
            fix="add privacy.bounds: {"
            + ", ".join(f"{c}: [min, max]" for c in missing)
            + "} (or a range constraint with both min and max)",
        )
    unknown = sorted(set(privacy.bounds) - set(modelled)) + sorted(
        set(privacy.categories) - set(modelled)
    )
    if unknown:
        raise PrivacyError(
            f"privacy.bounds/categories name column(s) that are not modelled: {unknown}",
            fix=f"use the modelled columns: {sorted(modelled)}",
        )
    if privacy.delta == 0:
        open_ = sorted(
            c
            for c, t in modelled.items()
            if t in ("categorical", "text") and c not in privacy.categories
        )
        if open_:
            raise DPMissingCategories(
                f"with privacy.delta = 0 categorical column(s) {open_} need a public list "
                "of values (the thresholded histogram spends delta)",
                fix="add privacy.categories for them, or set privacy.delta > 0",
            )


def public_bounds(
    config: TabularConfigBase, types: dict[str, str]
) -> dict[str, tuple[float, float]]:
    """Per numerical/datetime column: public [min, max] from privacy.bounds, else from a
    range constraint with both bounds (datetimes as nanoseconds)."""
    import pandas as pd

    assert config.privacy is not None
    given: dict[str, tuple[Any, Any]] = {c: (b[0], b[1]) for c, b in config.privacy.bounds.items()}
    for constraint in config.constraints:
        if constraint.kind == "range" and constraint.min is not None and constraint.max is not None:
            given.setdefault(constraint.column, (constraint.min, constraint.max))
    out: dict[str, tuple[float, float]] = {}
    for column, (low, high) in given.items():
        kind = types.get(column)
        if kind not in NUMERIC:
            continue
        try:
            if kind == "datetime":
                lo, hi = float(pd.Timestamp(low).value), float(pd.Timestamp(high).value)
            else:
                lo, hi = float(low), float(high)
        except (TypeError, ValueError):
            raise PrivacyError(
                f"privacy.bounds.{column}: [{low}, {high}] are not {kind} values",
                fix="give numbers (dates for a datetime column)",
            ) from None
        if not lo < hi:
            raise PrivacyError(
                f"privacy.bounds.{column}: min must be below max", fix="swap or widen them"
            )
        out[column] = (lo, hi)
    return out


def threshold(privacy: PrivacyConfig, budget: Plan, column: str) -> float:
    """tau of a categorical column without a public list: a value is released only when its
    noisy count clears it (see the module docstring)."""
    b = laplace_scale(2.0, budget.marginal[column])
    return 1.0 + b * math.log(1.0 / budget.threshold_delta[column])


#: what ``check_accuracy`` suggests: the epsilon at which a value held by this share of the
#: fitted rows clears the threshold more often than not
USEFUL_SHARE = 0.1


def check_accuracy(
    config: TabularConfigBase, types: dict[str, str], personal: dict[str, str], train: pd.DataFrame
) -> None:
    """What the budget does to the output, at preflight (after ``check``). ``train``: the rows
    the fit will see (their count is public under replace-one neighbours).

    Decided on public facts alone (budget, schema, row count), so certain before any noise
    is drawn, an error: a categorical column with no public list whose threshold tau is at
    least the number of rows fitted (``DPSuppressedColumn``): no value, not even one every
    row holds, clears it more often than not, so the column would come out all null. The fix
    names ``privacy.categories`` and the epsilon at which a value held by ``USEFUL_SHARE`` of
    the rows is kept.

    Warnings (``DPAccuracyWarning``; the run goes on): a categorical column whose values, as
    counted in ``train``, would mostly be dropped (expected share of its non-null rows at
    least 1/2: data-dependent, and the noise may go either way), and numerical columns whose
    noisy missing-value count has a Laplace scale of at least a tenth of the rows (public:
    a column with no nulls can come out with many)."""
    privacy = config.privacy
    if privacy is None:
        return
    modelled = {c: t for c, t in types.items() if c not in personal and t != "id"}
    budget = plan(privacy, modelled)
    rows = len(train)
    taus = {c: threshold(privacy, budget, c) for c in budget.threshold_delta}
    hopeless = sorted(c for c, tau in taus.items() if tau >= rows)
    if hopeless:
        tau = max(taus[c] for c in hopeless)
        listed = ", ".join(f"{c}: [...]" for c in hopeless)
        raise DPSuppressedColumn(
            f"under generator.privacy (epsilon {privacy.epsilon:g}, delta {privacy.delta:g}) "
            f"categorical column(s) {hopeless} have no public list of values: a value is kept "
            f"only if its noisy count clears {tau:.0f} rows, and the fit sees {rows} rows, so "
            "every value would be dropped and the column(s) would come out all null",
            fix=f"list their public values in privacy.categories: {{{listed}}}, or "
            + _epsilon_hint(privacy, budget, hopeless[0], rows),
        )
    notes: list[str] = []
    for c, tau in taus.items():
        dropped = _dropped_share(train[c], tau, laplace_scale(2.0, budget.marginal[c]))
        if dropped >= 0.5:
            notes.append(
                f"categorical column {c!r} (no public list): about {dropped:.0%} of its values "
                f"are held by too few rows to clear the threshold of {tau:.0f} rows and would "
                f"come out null; list its values in privacy.categories, or "
                + _epsilon_hint(privacy, budget, c, rows)
            )
    noisy = sorted(c for c, eps in budget.missing.items() if 1.0 / eps >= 0.1 * rows)
    if noisy:
        b = 1.0 / budget.missing[noisy[0]]
        notes.append(
            f"numerical column(s) {noisy}: each missing-value count is released with Laplace "
            f"noise of scale {b:.0f} rows on a {rows}-row fit, so a null rate can be off by "
            f"~{b / rows:.0%} of the rows (a column with no nulls can come out with many); "
            "raise privacy.epsilon or privacy.missing_share"
        )
    if notes:
        warnings.warn("generator.privacy: " + "; ".join(notes), DPAccuracyWarning, stacklevel=2)


def _epsilon_hint(privacy: PrivacyConfig, budget: Plan, column: str, rows: int) -> str:
    """'raise privacy.epsilon to at least E ...': tau scales as 1/epsilon (the split is
    proportional), so E makes tau = USEFUL_SHARE * rows."""
    target = USEFUL_SHARE * rows
    if target <= 1:
        return f"use a larger source table ({rows} rows are too few to release unlisted values)"
    now = threshold(privacy, budget, column)
    needed = privacy.epsilon * (now - 1.0) / (target - 1.0)
    if needed > 1000:
        return "use a larger source table (no epsilon up to 1000 keeps unlisted values)"
    digits = 10 ** (math.floor(math.log10(needed)) - 1)
    needed = math.ceil(needed / digits) * digits
    return (
        f"raise privacy.epsilon to at least {needed:g} (values held by "
        f"{USEFUL_SHARE:.0%} of the rows are then kept more often than not)"
    )


def _dropped_share(values: pd.Series, tau: float, b: float) -> float:
    """Expected share of the non-null ``values`` whose value does not clear ``tau`` under
    Laplace(b) noise on its count."""
    counts = values.dropna().astype(str).value_counts().to_numpy(dtype=float)
    if not counts.sum():
        return 0.0
    below = counts < tau
    dropped = np.where(
        below, 1.0 - 0.5 * np.exp(-(tau - counts) / b), 0.5 * np.exp(-(counts - tau) / b)
    )
    return float((counts * dropped).sum() / counts.sum())


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
        if types[c] in NUMERIC:
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
