"""The Gaussian copula on a shipped table and on a mixed-type table with missing values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from synthfactory.column_detection import detect_types
from synthfactory.errors import ConfigError
from synthfactory.spec import load_spec
from synthfactory.storage import LocalStore
from synthfactory_workers.contract import GeneratorContext, ShardTask
from synthfactory_workers.tabular.copula import CopulaGenerator, GaussianCopula

from .tables import PENGUINS, mixed_table, spec_dict


def test_detects_types() -> None:
    types = detect_types(mixed_table())
    assert types == {
        "customer_id": "id",
        "amount": "numerical",
        "score": "numerical",
        "count": "numerical",
        "plan": "categorical",
        "active": "boolean",
        "signup": "datetime",
    }
    assert detect_types(mixed_table(), {"count": "categorical"})["count"] == "categorical"


def test_fit_sample_keeps_types_ranges_nulls_and_marginals() -> None:
    real = mixed_table()
    model = GaussianCopula()
    model.fit(real, detect_types(real))
    model = GaussianCopula.load(model.save())  # the JSON round trip is what actors use
    syn = model.sample(5000, seed=3)
    assert list(syn.columns) == list(real.columns)
    assert syn["active"].dtype == bool
    assert pd.api.types.is_datetime64_any_dtype(syn["signup"])
    assert pd.api.types.is_integer_dtype(syn["count"])
    assert syn["amount"].between(real["amount"].min(), real["amount"].max()).all()
    assert np.allclose(syn["amount"], syn["amount"].round(2))
    assert abs(syn["score"].isna().mean() - real["score"].isna().mean()) < 0.03
    assert abs(syn["plan"].isna().mean() - real["plan"].isna().mean()) < 0.03
    for col in ("amount", "score", "count"):
        ks = stats.ks_2samp(real[col].dropna(), syn[col].dropna()).statistic
        assert ks < 0.08, f"{col} marginal drifted: KS={ks:.3f}"
    ks = stats.ks_2samp(real["signup"].astype("int64"), syn["signup"].astype("int64")).statistic
    assert ks < 0.08
    freq_real = real["plan"].value_counts(normalize=True)
    freq_syn = syn["plan"].value_counts(normalize=True)
    assert (freq_real - freq_syn).abs().max() < 0.03
    assert abs(syn["active"].mean() - real["active"].mean()) < 0.03
    r_real = real[["amount", "score"]].corr().iloc[0, 1]
    r_syn = syn[["amount", "score"]].corr().iloc[0, 1]
    assert r_real > 0.8 and abs(r_real - r_syn) < 0.1, (r_real, r_syn)


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    real = mixed_table()
    model = GaussianCopula()
    model.fit(real, detect_types(real))
    pd.testing.assert_frame_equal(model.sample(300, 9), model.sample(300, 9))
    assert not model.sample(300, 9)["amount"].equals(model.sample(300, 10)["amount"])


@pytest.mark.parametrize("distribution", ["auto", "norm", "beta", "truncnorm", "gamma"])
def test_parametric_marginals(distribution: str) -> None:
    real = mixed_table()
    model = GaussianCopula(default_distribution=distribution)
    model.fit(real, detect_types(real))
    syn = model.sample(3000, 1)
    assert stats.ks_2samp(real["amount"], syn["amount"]).statistic < 0.15


def spec_for(source: Path, output: Path, **generator: object) -> dict[str, object]:
    return spec_dict(source, output, **generator)


def test_generator_contract_fit_once_and_regenerated_ids(tmp_path: Path) -> None:
    source = tmp_path / "mixed.parquet"
    pa.Table.from_pandas(mixed_table(), preserve_index=False).to_pandas().to_parquet(source)
    spec = load_spec(spec_for(source, tmp_path / "out"))
    artifacts = LocalStore(tmp_path / "artifacts")
    facts = CopulaGenerator.preflight(spec)
    assert len(facts["source_sha256"]) == 64
    first = CopulaGenerator.prepare(spec, artifacts)
    again = CopulaGenerator.prepare(spec, artifacts)
    assert not first["reused"] and again["reused"] and again["model_key"] == first["model_key"]
    gen = CopulaGenerator(spec, GeneratorContext(artifacts=artifacts, prepared=first))
    gen.load()
    table = gen.generate(ShardTask(1, 500, 500, 77)).table
    assert table.num_rows == 500
    assert (
        table.schema == pa.Table.from_pandas(pd.read_parquet(source), preserve_index=False).schema
    )
    ids = table["customer_id"].to_pylist()
    first_new = int(mixed_table()["customer_id"].max()) + 1
    assert ids == list(range(first_new + 500, first_new + 1000)), "from global row numbers"
    assert not set(ids) & set(mixed_table()["customer_id"]), "never a source id"
    # a changed source is a new fingerprint, so a new model
    changed = mixed_table(seed=1)
    changed.to_parquet(source)
    assert CopulaGenerator.preflight(spec)["source_sha256"] != facts["source_sha256"]
    assert not CopulaGenerator.prepare(spec, artifacts)["reused"]


def test_penguins(tmp_path: Path) -> None:
    spec = load_spec(spec_for(PENGUINS, tmp_path / "out"))
    artifacts = LocalStore(tmp_path / "a")
    gen = CopulaGenerator(
        spec,
        GeneratorContext(artifacts=artifacts, prepared=CopulaGenerator.prepare(spec, artifacts)),
    )
    gen.load()
    syn = gen.generate(ShardTask(0, 0, 2000, 1)).table.to_pandas()
    real = pd.read_csv(PENGUINS)
    assert set(syn["species"]) == set(real["species"])
    assert (
        stats.ks_2samp(real["body_mass_g"].dropna(), syn["body_mass_g"].dropna()).statistic < 0.08
    )


def test_bad_column_override_and_missing_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not in"):
        CopulaGenerator.preflight(
            load_spec(spec_for(PENGUINS, tmp_path, column_types={"nope": "categorical"}))
        )
    with pytest.raises(ConfigError, match="does not exist"):
        CopulaGenerator.preflight(load_spec(spec_for(tmp_path / "missing.csv", tmp_path)))


def test_conditions_are_exact_and_shift_correlated_columns() -> None:
    real = mixed_table()
    model = GaussianCopula()
    model.fit(real, detect_types(real))
    team = model.sample(2000, 4, {"plan": "team"})
    assert (team["plan"] == "team").all()
    high = model.sample(2000, 4, {"score": 70})
    low = model.sample(2000, 4, {"score": 30})
    assert (high["score"] == 70).all() and (low["score"] == 30).all()
    # amount ~ 3 x score in the source: conditioning on score moves amount with it
    assert high["amount"].mean() - low["amount"].mean() > 80
    assert high["amount"].mean() == pytest.approx(210, abs=15)
    when = model.sample(50, 4, {"signup": "2024-03-01"})
    assert (when["signup"] == pd.Timestamp("2024-03-01")).all()
    pd.testing.assert_frame_equal(team, model.sample(2000, 4, {"plan": "team"}))


def test_conditions_that_can_never_hold_are_config_errors() -> None:
    real = mixed_table()
    model = GaussianCopula()
    model.fit(real, detect_types(real))
    with pytest.raises(ConfigError, match="never occurs"):
        model.sample(10, 0, {"plan": "enterprise"})
    with pytest.raises(ConfigError, match="outside the source's range"):
        model.sample(10, 0, {"score": 1e6})
    with pytest.raises(ConfigError, match="not in the fitted table"):
        model.sample(10, 0, {"nope": 1})
    with pytest.raises(ConfigError, match="id column"):
        model.sample(10, 0, {"customer_id": 1000})
