"""Differentially private Gaussian copula on the penguins table: quality falls with
epsilon, the budget adds up, every noise scale matches its formula, the correlation is a
correlation matrix, and the options that would leak are named preflight errors."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from synthfactory.column_detection import detect_types
from synthfactory.dataset.manifest import Manifest, SchemaInfo
from synthfactory.metrics.card import render
from synthfactory.metrics.tabular.quality import quality_report
from synthfactory.spec import load_spec
from synthfactory.spec.generators.tabular import PrivacyConfig
from synthfactory.storage import LocalStore
from synthfactory_workers.contract import GeneratorContext, ShardTask
from synthfactory_workers.tabular import dp, dp_checks
from synthfactory_workers.tabular.copula import CopulaGenerator, GaussianCopula
from synthfactory_workers.tabular.generator import model_key
from synthfactory_workers.tabular.tvae import TVAEGenerator

from .tables import PENGUINS, TINY_TVAE, mixed_table, spec_dict, write

#: public knowledge about penguins (field guides), not the table's own min/max
BOUNDS = {
    "bill_length_mm": [30, 60],
    "bill_depth_mm": [13, 22],
    "flipper_length_mm": [170, 235],
    "body_mass_g": [2500, 6500],
    "year": [2007, 2009],
}
CATEGORIES = {
    "species": ["Adelie", "Chinstrap", "Gentoo"],
    "island": ["Biscoe", "Dream", "Torgersen"],
    "sex": ["female", "male"],
}


def privacy(epsilon: float, **extra: Any) -> dict[str, Any]:
    return {
        "epsilon": epsilon,
        "delta": 1e-6,
        "bounds": BOUNDS,
        "categories": CATEGORIES,
        "noise": "fit_seed",
        **extra,
    }


def fit(epsilon: float | None, seed: int = 0, **extra: Any) -> GaussianCopula:
    real = pd.read_csv(PENGUINS)
    config = PrivacyConfig(**privacy(epsilon, **extra)) if epsilon else None
    bounds = {c: (float(lo), float(hi)) for c, (lo, hi) in BOUNDS.items()}
    model = GaussianCopula(seed=seed, privacy=config, bounds=bounds)
    model.fit(real, detect_types(real))
    return GaussianCopula.load(model.save())


def test_quality_falls_with_epsilon() -> None:
    """Mean quality.overall of 3 fit seeds (DP noise and sampling both seeded), so the
    ordering does not hang on one draw of the noise."""
    real = pd.read_csv(PENGUINS)

    def quality(epsilon: float | None) -> float:
        scores = []
        for seed in range(3):
            syn = fit(epsilon, seed).sample(len(real), seed)
            scores.append(quality_report(real, syn)["overall"])
        return float(np.mean(scores))

    q1, q10, exact = quality(1.0), quality(10.0), quality(None)
    assert q1 < q10 < exact, (q1, q10, exact)


def test_budget_adds_up_and_every_scale_matches_its_formula() -> None:
    for epsilon in (1.0, 10.0):
        budget = fit(epsilon).privacy_budget
        assert budget is not None
        mechanisms = budget["mechanisms"]
        assert budget["epsilon"] == pytest.approx(epsilon, rel=1e-12)
        assert math.fsum(m["epsilon"] for m in mechanisms) == pytest.approx(epsilon, rel=1e-12)
        assert budget["delta"] == pytest.approx(1e-6, rel=1e-12)
        assert math.fsum(m["delta"] for m in mechanisms) == pytest.approx(1e-6, rel=1e-12)
        stats = {m["statistic"]: m for m in mechanisms}
        # 8 columns: 5 numerical (histogram + missing rate), 3 categorical, 1 correlation
        assert len(mechanisms) == 5 * 2 + 3 + 1
        per_column = 0.7 * epsilon / 8  # correlation_share 0.3, the rest per column
        hist = stats["histogram(body_mass_g)"]
        assert hist["epsilon"] == pytest.approx(0.9 * per_column)
        assert hist["noise_scale"] == pytest.approx(2 / (0.9 * per_column))  # b = 2/eps
        missing = stats["missing_rate(body_mass_g)"]
        assert missing["noise_scale"] == pytest.approx(1 / (0.1 * per_column))  # b = 1/eps
        counts = stats["counts(species)"]
        assert counts["mechanism"] == "laplace" and counts["delta"] == 0
        assert counts["noise_scale"] == pytest.approx(2 / per_column)
        corr = stats["correlation"]
        d, n, clip = corr["dims"], 344, corr["clip"]
        sensitivity = 2 * clip**2 * math.sqrt(d * (d + 1) / 2) / n
        assert corr["sensitivity"] == pytest.approx(sensitivity)
        eps_c, delta_c = 0.3 * epsilon, 1e-6  # no thresholded column: all delta here
        assert corr["epsilon"] == pytest.approx(eps_c) and corr["delta"] == pytest.approx(1e-6)
        sigma = corr["noise_scale"]
        if eps_c <= 1:  # classical Gaussian mechanism
            assert corr["mechanism"] == "gaussian"
            assert sigma == pytest.approx(
                sensitivity * math.sqrt(2 * math.log(1.25 / delta_c)) / eps_c
            )
        else:  # analytic Gaussian (Balle & Wang 2018): the exact delta at sigma is delta
            assert corr["mechanism"] == "gaussian_analytic"
            from scipy.stats import norm

            def exact_delta(s: float, sens: float = sensitivity, e: float = eps_c) -> float:
                a, b = sens / (2 * s), e * s / sens
                return float(norm.cdf(a - b) - math.exp(e) * norm.cdf(-a - b))

            assert exact_delta(sigma) == pytest.approx(delta_c, rel=1e-6)
            assert exact_delta(sigma * 0.99) > delta_c  # the smallest such sigma
            classical = sensitivity * math.sqrt(2 * math.log(1.25 / delta_c)) / eps_c
            assert sigma < classical


def test_thresholded_categories_spend_delta() -> None:
    """Without a public list of values, counts are thresholded: tau = 1 + b ln(1/delta_c),
    and delta is split half to the correlation, half over those columns."""
    budget = fit(3.0, categories={"species": CATEGORIES["species"]}).privacy_budget
    assert budget is not None
    stats = {m["statistic"]: m for m in budget["mechanisms"]}
    assert stats["correlation"]["delta"] == pytest.approx(0.5e-6)
    for column in ("island", "sex"):
        m = stats[f"counts({column})"]
        assert m["mechanism"] == "laplace_threshold"
        assert m["delta"] == pytest.approx(0.25e-6)
        assert m["threshold"] == pytest.approx(1 + m["noise_scale"] * math.log(1 / 0.25e-6))
    assert stats["counts(species)"]["delta"] == 0
    assert math.fsum(m["delta"] for m in budget["mechanisms"]) == pytest.approx(1e-6)
    assert math.fsum(m["epsilon"] for m in budget["mechanisms"]) == pytest.approx(3.0)


def test_rare_values_are_never_released() -> None:
    """A value seen once cannot clear the threshold; common ones do at a large epsilon."""
    real = mixed_table(400)
    real["plan"] = real["plan"].astype(object)
    real.loc[0, "plan"] = "one-of-a-kind"
    types = detect_types(real)
    bounds = {"amount": (0.0, 300.0), "score": (0.0, 100.0), "count": (0.0, 20.0)}
    bounds["signup"] = (
        float(pd.Timestamp("2024-01-01").value),
        float(pd.Timestamp("2025-01-01").value),
    )
    config = PrivacyConfig(epsilon=50, bounds={}, noise="fit_seed")
    model = GaussianCopula(privacy=config, bounds=bounds)
    model.fit(real, types)
    values = model.column("plan")["intervals"]["values"]
    assert "one-of-a-kind" not in values and {"basic", "pro"} <= set(values)
    assert model.column("customer_id")["type"] == "id"
    syn = model.sample(500, 1)
    assert syn["amount"].between(0, 300).all()


def test_projected_correlation_is_a_correlation_matrix() -> None:
    for epsilon in (0.5, 1.0, 10.0):
        corr = fit(epsilon).correlation
        assert np.allclose(corr, corr.T)
        assert np.allclose(np.diag(corr), 1.0)
        assert np.linalg.eigvalsh(corr).min() > 0
        np.linalg.cholesky(corr)
    rng = np.random.default_rng(0)
    noisy = np.clip(np.eye(6) + rng.normal(0, 0.8, (6, 6)), -1, 1)
    noisy = (noisy + noisy.T) / 2
    np.fill_diagonal(noisy, 1)
    assert np.linalg.eigvalsh(noisy).min() < 0  # not a correlation matrix before
    fixed = dp.nearest_correlation(noisy)
    assert np.allclose(np.diag(fixed), 1) and np.linalg.eigvalsh(fixed).min() > 0
    # already valid: (almost) unchanged
    valid = np.array([[1, 0.5], [0.5, 1.0]])
    assert np.allclose(dp.nearest_correlation(valid), valid, atol=1e-6)


def test_noise_is_seeded_from_fit_seed_or_secret() -> None:
    assert np.array_equal(fit(1.0, 4).correlation, fit(1.0, 4).correlation)
    assert not np.array_equal(fit(1.0, 4).correlation, fit(1.0, 5).correlation)
    secret = [fit(1.0, 4, noise="secret").correlation for _ in range(2)]
    assert not np.array_equal(secret[0], secret[1])


def test_generator_fit_reports_budget_and_privacy_changes_the_model_key(tmp_path: Path) -> None:
    spec = load_spec(spec_dict(PENGUINS, tmp_path / "out", privacy=privacy(1.0)))
    plain_spec = load_spec(spec_dict(PENGUINS, tmp_path / "out"))
    other = load_spec(spec_dict(PENGUINS, tmp_path / "out", privacy=privacy(2.0)))
    sha = "0" * 64
    keys = {model_key(sha, s.generator) for s in (spec, plain_spec, other)}  # type: ignore[arg-type]
    assert len(keys) == 3
    CopulaGenerator.preflight(spec)
    artifacts = LocalStore(tmp_path / "a")
    prepared = CopulaGenerator.prepare(spec, artifacts)
    budget = prepared["privacy_budget"]
    assert budget["epsilon"] == pytest.approx(1.0)
    gen = CopulaGenerator(spec, GeneratorContext(artifacts=artifacts, prepared=prepared))
    gen.load()
    table = gen.generate(ShardTask(0, 0, 300, 1)).table.to_pandas()
    assert len(table) == 300 and set(table["species"].dropna()) <= set(CATEGORIES["species"])
    assert table["body_mass_g"].dropna().between(2500, 6500).all()
    manifest = Manifest(
        name="p",
        version="v1",
        modality="tabular",
        rows=300,
        shards=[],
        schema=SchemaInfo(fields=[], arrow=""),
        spec={},
        spec_hash="0" * 16,
        privacy_budget=budget,
    )
    assert Manifest.model_validate_json(manifest.to_json()).privacy_budget == budget
    card = render(manifest, None, table.head(0), [])
    assert "## Differential privacy" in card and "`correlation`" in card
    assert "`histogram(body_mass_g)`" in card


def test_numeric_ids_restart_under_privacy(tmp_path: Path) -> None:
    real = mixed_table(200)
    source = write(real, tmp_path)
    bounds = {"amount": [0, 300], "score": [0, 100], "count": [0, 20]}
    bounds["signup"] = ["2024-01-01", "2025-01-01"]  # type: ignore[list-item]
    spec = load_spec(
        spec_dict(
            source,
            tmp_path / "out",
            privacy={"epsilon": 5, "bounds": bounds, "noise": "fit_seed"},
        )
    )
    artifacts = LocalStore(tmp_path / "a")
    prepared = CopulaGenerator.prepare(spec, artifacts)
    gen = CopulaGenerator(spec, GeneratorContext(artifacts=artifacts, prepared=prepared))
    gen.load()
    table = gen.generate(ShardTask(0, 0, 50, 1)).table.to_pandas()
    assert table["customer_id"].tolist() == list(range(1, 51))  # not past the source's max


@pytest.mark.parametrize(
    ("extra", "error", "match"),
    [
        (
            {"constraints": [{"kind": "fixed_combinations", "columns": ["species", "island"]}]},
            dp_checks.DPSourceConstraint,
            "fixed_combinations",
        ),
        ({"augment": {"balance": "species"}}, dp_checks.DPAugmentation, "class counts"),
        (
            {"augment": {"balance": "species", "combined": True}},
            dp_checks.DPAugmentation,
            "source rows",
        ),
        ({"detect_pii": True}, dp_checks.DPPiiDetection, "digests"),
        ({"default_distribution": "norm"}, dp_checks.DPParametricMarginal, "parametric"),
    ],
)
def test_leaky_options_are_named_preflight_errors(
    tmp_path: Path, extra: dict[str, Any], error: type[Exception], match: str
) -> None:
    spec = load_spec(spec_dict(PENGUINS, tmp_path, privacy=privacy(1.0), **extra))
    with pytest.raises(error, match=match) as caught:
        CopulaGenerator.preflight(spec)
    assert isinstance(caught.value, dp_checks.PrivacyError) and caught.value.fix


def test_missing_bounds_categories_and_neural_synthesizers(tmp_path: Path) -> None:
    partial = {k: v for k, v in BOUNDS.items() if k != "year"}
    spec = load_spec(spec_dict(PENGUINS, tmp_path, privacy={**privacy(1.0), "bounds": partial}))
    with pytest.raises(dp_checks.DPMissingBounds, match="year") as caught:
        CopulaGenerator.preflight(spec)
    assert caught.value.fix and "privacy.bounds" in caught.value.fix
    # a range constraint with both bounds is a public bound
    spec = load_spec(
        spec_dict(
            PENGUINS,
            tmp_path,
            privacy={**privacy(1.0), "bounds": partial},
            constraints=[{"kind": "range", "column": "year", "min": 2007, "max": 2009}],
        )
    )
    CopulaGenerator.preflight(spec)
    spec = load_spec(
        spec_dict(PENGUINS, tmp_path, privacy={**privacy(1.0), "delta": 0, "categories": {}})
    )
    with pytest.raises(dp_checks.DPMissingCategories, match="delta = 0"):
        CopulaGenerator.preflight(spec)
    spec = load_spec(spec_dict(PENGUINS, tmp_path, "tvae", privacy=privacy(1.0), **TINY_TVAE))
    with pytest.raises(dp_checks.DPUnsupportedSynthesizer, match="opacus"):
        TVAEGenerator.preflight(spec)


def test_pure_dp_with_delta_zero_uses_laplace_for_the_correlation() -> None:
    budget = fit(2.0, delta=0).privacy_budget
    assert budget is not None and budget["delta"] == 0
    corr = next(m for m in budget["mechanisms"] if m["statistic"] == "correlation")
    d = corr["dims"]
    sensitivity = 2 * corr["clip"] ** 2 * d * (d + 1) / 2 / 344
    assert corr["mechanism"] == "laplace"
    assert corr["noise_scale"] == pytest.approx(sensitivity / 0.6)


def test_a_budget_that_suppresses_a_whole_column_is_a_preflight_error(tmp_path: Path) -> None:
    """The README's first snippet (a public list for species only, epsilon 1): island and
    sex would be all null, as the fit confirms; preflight says so with the fix."""
    species = {"species": CATEGORIES["species"]}
    unlisted = fit(1.0, categories=species).sample(300, 0)
    assert unlisted["island"].isna().all() and unlisted["sex"].isna().all()
    spec = load_spec(spec_dict(PENGUINS, tmp_path, privacy=privacy(1.0, categories=species)))
    with pytest.raises(
        dp_checks.DPSuppressedColumn, match=r"\['island', 'sex'\].*all null"
    ) as caught:
        CopulaGenerator.preflight(spec)
    fix = caught.value.fix
    assert fix and "privacy.categories: {island: [...], sex: [...]}" in fix
    found = re.search(r"privacy\.epsilon to at least ([0-9.]+)", fix)
    assert found, fix
    # the epsilon it names passes, and keeps the common values
    enough = float(found.group(1))
    CopulaGenerator.preflight(
        load_spec(spec_dict(PENGUINS, tmp_path, privacy=privacy(enough, categories=species)))
    )
    assert fit(enough, categories=species).sample(300, 0)["island"].notna().mean() > 0.5


def test_budget_warnings_at_preflight(tmp_path: Path) -> None:
    """Data-dependent (most of a column's values under the threshold) and noisy null rates
    warn: the run can go on."""
    species = {"species": CATEGORIES["species"]}
    spec = load_spec(spec_dict(PENGUINS, tmp_path, privacy=privacy(2.0, categories=species)))
    with pytest.warns(
        dp_checks.DPAccuracyWarning, match=r"'island' \(no public list\): about \d+%"
    ):
        CopulaGenerator.preflight(spec)
    spec = load_spec(spec_dict(PENGUINS, tmp_path, privacy=privacy(1.0)))
    with pytest.warns(dp_checks.DPAccuracyWarning, match=r"missing-value count .* scale 114 rows"):
        CopulaGenerator.preflight(spec)
    spec = load_spec(spec_dict(PENGUINS, tmp_path, privacy=privacy(10.0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CopulaGenerator.preflight(spec)
