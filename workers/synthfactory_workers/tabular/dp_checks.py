"""What ``generator.privacy`` refuses or warns about, at preflight: each refusal a named
``PrivacyError`` with its fix (a synthesizer without a DP fit, data-dependent options,
numbers without public bounds...), and ``check_accuracy``: what the budget does to the
output, decided on public facts (budget, schema, row count)."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.spec.generators.tabular import GaussianCopulaConfig
from synthfactory_workers.tabular.column_types import NUMERIC_TYPES
from synthfactory_workers.tabular.dp import Plan, laplace_scale, plan, threshold

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.spec.generators.tabular import PrivacyConfig, TabularConfigBase


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
    _check_options(config)
    _check_columns(config, privacy, types, personal)


def _check_options(config: TabularConfigBase) -> None:
    """Options that would read or release the source's values in clear."""
    if config.kind != "gaussian_copula":
        raise DPUnsupportedSynthesizer(
            f"generator.privacy is not available for {config.kind}: DP-SGD needs opacus, "
            "which is not a dependency of synthfactory, and no DP training is implemented",
            fix="use kind: gaussian_copula for a differentially private fit, or drop privacy",
        )
    if isinstance(config, GaussianCopulaConfig) and config.default_distribution != "empirical":
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


def _check_columns(
    config: TabularConfigBase,
    privacy: PrivacyConfig,
    types: dict[str, str],
    personal: dict[str, str],
) -> None:
    """Every modelled column has what its mechanism needs from public knowledge."""
    modelled = {c: t for c, t in types.items() if c not in personal and t != "id"}
    bounds = public_bounds(config, modelled)
    missing = sorted(c for c, t in modelled.items() if t in NUMERIC_TYPES and c not in bounds)
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
        if kind not in NUMERIC_TYPES:
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
