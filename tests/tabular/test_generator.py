"""The tabular generators through the contract: personal data and ids never copied,
constraints on every row with rejections counted, conditions, class balancing, caching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from synthfactory.errors import ConfigError, SpecError
from synthfactory.spec import load_spec
from synthfactory.storage import LocalStore
from synthfactory_workers.contract import (
    Generator,
    GeneratorContext,
    ShardOutput,
    ShardTask,
    generator_class,
    with_derived_rows,
)
from synthfactory_workers.tabular.fit_cache import FitCache
from synthfactory_workers.tabular.generator import required_rows
from synthfactory_workers.tabular.metadata import detect_pii

from .tables import TINY_CTGAN, TINY_TVAE, people_table, spec_dict, write

KINDS = {"gaussian_copula": {}, "ctgan": TINY_CTGAN, "tvae": TINY_TVAE}
PII = ("full_name", "contact", "phone_number", "home")


def start(tmp_path: Path, spec: dict[str, Any]) -> tuple[Generator, dict[str, Any]]:
    job = load_spec(spec)
    cls = generator_class(job)
    cls.preflight(job)
    artifacts = LocalStore(tmp_path / "artifacts")
    prepared = cls.prepare(job, artifacts)
    gen = cls(job, GeneratorContext(artifacts=artifacts, prepared=prepared))
    gen.load()
    return gen, prepared


def shards(gen: Generator, rows: int, shard_rows: int, seed: int = 0) -> list[ShardOutput]:
    return [
        gen.generate(ShardTask(i, start, min(shard_rows, rows - start), seed + i))
        for i, start in enumerate(range(0, rows, shard_rows))
    ]


def test_detects_personal_data_by_name_and_content() -> None:
    df = people_table()
    renamed = df.rename(columns={"full_name": "c1", "contact": "c2", "phone_number": "c3"})
    assert detect_pii(df) == {
        "full_name": "name",
        "contact": "email",
        "phone_number": "phone",
        "home": "address",
    }
    found = detect_pii(renamed)
    assert found["c2"] == "email" and found["c3"] == "phone" and found["home"] == "address"
    assert detect_pii(df, {"plan": "name"}, detect=False) == {"plan": "name"}
    assert "home" not in detect_pii(df, skip={"home"})
    assert detect_pii(df[["plan", "amount", "signup"]]) == {}


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_personal_value_or_id_from_the_source(tmp_path: Path, kind: str) -> None:
    real = people_table()
    source = write(real, tmp_path)
    gen, prepared = start(tmp_path, spec_dict(source, tmp_path / "out", kind, **KINDS[kind]))
    assert prepared["pii_columns"] == {
        "full_name": "name",
        "contact": "email",
        "phone_number": "phone",
        "home": "address",
    }
    assert prepared["column_types"]["account_ref"] == "id"
    outs = shards(gen, 1000, 500)
    syn = pa.concat_tables([o.table for o in outs]).to_pandas()
    assert len(syn) == 1000
    for column in PII:
        seen = {str(v).strip().lower() for v in real[column].dropna()}
        made = syn[column].astype(str).str.strip().str.lower()
        assert not made.isin(seen).any(), f"{column} copied a source value"
        assert syn[column].notna().all() and made.nunique() > 500
    assert syn["contact"].str.fullmatch(r"[\w.+-]+@example\.(com|org|net)").all()
    assert not set(syn["account_ref"]) & set(real["account_ref"])
    assert syn["account_ref"].is_unique
    # the same shard from the same seed is the same rows (fake values included)
    again = gen.generate(ShardTask(1, 500, 500, 1)).table
    assert again.equals(outs[1].table)


def constrained(source: Path, output: Path, kind: str, **more: Any) -> dict[str, Any]:
    return spec_dict(
        source,
        output,
        kind,
        constraints=[
            {"kind": "range", "column": "amount", "min": 120, "max": 190},
            {"kind": "range", "column": "signup", "min": "2024-02-01", "strict": True},
            {"kind": "inequality", "low": "score", "high": "amount"},
            {"kind": "fixed_combinations", "columns": ["plan", "active"]},
            {"kind": "unique", "columns": ["contact"]},
            {"kind": "rounding", "column": "score", "digits": 1},
        ],
        **KINDS[kind],
        **more,
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_constraints_hold_on_every_row_and_rejections_are_counted(
    tmp_path: Path, kind: str
) -> None:
    real = people_table()
    # the source never has a 'team' plan that is inactive: that combination is not allowed
    real = real[~((real["plan"] == "team") & ~real["active"])].reset_index(drop=True)
    source = write(real, tmp_path)
    gen, _ = start(tmp_path, constrained(source, tmp_path / "out", kind))
    out = gen.generate(ShardTask(0, 0, 800, 3))
    syn = out.table.to_pandas()
    assert len(syn) == 800
    assert syn["amount"].between(120, 190).all()
    assert (syn["signup"] > pd.Timestamp("2024-02-01")).all()
    both = syn["score"].notna()
    assert (syn.loc[both, "score"] < syn.loc[both, "amount"]).all()
    assert not ((syn["plan"] == "team") & ~syn["active"]).any()
    assert syn["contact"].is_unique
    assert np.allclose(syn["score"].dropna(), syn["score"].dropna().round(1))
    assert out.rejected is not None and out.stats["constraint_rejections"] == out.rejected.num_rows
    assert out.stats["candidates"] == 800 + out.rejected.num_rows
    reasons = set(out.rejected["reason"].to_pylist())
    assert "range(amount)" in reasons and "range(signup)" in reasons
    rejected = out.rejected.to_pandas()
    bad_amount = rejected[rejected["reason"] == "range(amount)"]["amount"]
    assert (~bad_amount.between(120, 190)).all(), "a rejected row breaks its stated rule"


def test_constraint_errors_before_sampling(tmp_path: Path) -> None:
    source = write(people_table(), tmp_path)
    out = tmp_path / "out"
    cases = [
        ({"kind": "range", "column": "nope", "min": 1}, "names column 'nope'"),
        ({"kind": "inequality", "low": "plan", "high": "amount"}, "needs a numerical or datetime"),
        ({"kind": "inequality", "low": "signup", "high": "amount"}, "compares a datetime"),
        ({"kind": "rounding", "column": "plan", "digits": 1}, "needs a numerical column"),
        ({"kind": "fixed_combinations", "columns": ["plan", "contact"]}, "personal-data"),
        ({"kind": "fixed_combinations", "columns": ["plan", "account_ref"]}, "an id"),
    ]
    for constraint, message in cases:
        job = load_spec(spec_dict(source, out, constraints=[constraint]))
        with pytest.raises(ConfigError, match=message):
            generator_class(job).preflight(job)
    impossible = spec_dict(
        source, out, constraints=[{"kind": "range", "column": "amount", "min": 1e6}]
    )
    gen, _ = start(tmp_path, impossible)
    with pytest.raises(ConfigError, match="constraints rejected"):
        gen.generate(ShardTask(0, 0, 10, 0))


@pytest.mark.parametrize("kind", list(KINDS))
def test_conditions_on_every_row(tmp_path: Path, kind: str) -> None:
    source = write(people_table(), tmp_path)
    spec = spec_dict(source, tmp_path / "out", kind, conditions={"plan": "team"}, **KINDS[kind])
    gen, _ = start(tmp_path, spec)
    table = gen.generate(ShardTask(0, 0, 300, 0)).table
    assert set(table["plan"].to_pylist()) == {"team"}


def test_conditions_that_cannot_hold_fail_in_preflight_or_prepare(tmp_path: Path) -> None:
    source = write(people_table(), tmp_path)
    out = tmp_path / "out"
    for conditions, where, message in [
        ({"nope": 1}, "preflight", "not in"),
        ({"contact": "x@y.z"}, "preflight", "regenerated"),
        ({"plan": "enterprise"}, "prepare", "never occurs"),
        ({"amount": 5000}, "prepare", "outside the source's range"),
    ]:
        job = load_spec(spec_dict(source, out, conditions=conditions))
        cls = generator_class(job)
        with pytest.raises(ConfigError, match=message):
            cls.preflight(job)
            assert where == "prepare", conditions
            cls.prepare(job, LocalStore(tmp_path / "artifacts"))


@pytest.mark.parametrize("kind", list(KINDS))
def test_balance_reaches_exact_class_counts(tmp_path: Path, kind: str) -> None:
    real = people_table()
    source = write(real, tmp_path)
    counts = real["plan"].value_counts()
    needed = int((counts.max() - counts).sum())
    spec = spec_dict(
        source, tmp_path / "out", kind, rows=needed, augment={"balance": "plan"}, **KINDS[kind]
    )
    assert required_rows(load_spec(spec)) == needed
    gen, prepared = start(tmp_path, spec)
    assert sum(n for _, n in prepared["balance"]) == needed
    syn = pa.concat_tables([o.table for o in shards(gen, needed, 100)]).to_pandas()
    total = real["plan"].value_counts() + syn["plan"].value_counts().reindex(
        counts.index, fill_value=0
    )
    assert (total == counts.max()).all(), total


def test_balance_combined_writes_source_and_synthetic(tmp_path: Path) -> None:
    real = people_table(200)
    source = write(real, tmp_path)
    counts = real["plan"].value_counts()
    rows = len(real) + int((counts.max() - counts).sum())
    spec = spec_dict(
        source, tmp_path / "out", rows=rows, augment={"balance": "plan", "combined": True}
    )
    gen, _ = start(tmp_path, spec)
    df = pa.concat_tables([o.table for o in shards(gen, rows, 150)]).to_pandas()
    assert len(df) == rows and df["is_synthetic"].sum() == rows - len(real)
    assert (df["plan"].value_counts() == counts.max()).all()
    kept = df[~df["is_synthetic"]].drop(columns="is_synthetic").reset_index(drop=True)
    assert kept["account_ref"].tolist() == real["account_ref"].tolist()
    assert not set(df.loc[df["is_synthetic"], "account_ref"]) & set(real["account_ref"])


def test_balance_needs_the_exact_row_count(tmp_path: Path) -> None:
    real = people_table()
    source = write(real, tmp_path)
    counts = real["plan"].value_counts()
    needed = int((counts.max() - counts).sum())
    job = load_spec(spec_dict(source, tmp_path / "o", rows=5, augment={"balance": "plan"}))
    with pytest.raises(ConfigError, match=f"set rows: {needed}"):
        generator_class(job).preflight(job)
    job = load_spec(spec_dict(source, tmp_path / "o", rows=5, augment={"balance": "amount"}))
    with pytest.raises(ConfigError, match="needs a categorical column"):
        generator_class(job).preflight(job)
    with pytest.raises(SpecError, match="either 'conditions' or 'augment'"):
        load_spec(
            spec_dict(source, tmp_path, augment={"balance": "plan"}, conditions={"plan": "pro"})
        )


def test_derived_rows_and_an_unknown_faker_locale(tmp_path: Path) -> None:
    real = people_table()
    source = write(real, tmp_path)
    counts = real["plan"].value_counts()
    spec = spec_dict(source, tmp_path / "o", augment={"balance": "plan", "combined": True})
    del spec["rows"]
    job = with_derived_rows(load_spec(spec))
    assert job.rows == len(real) + int((counts.max() - counts).sum())
    generator_class(job).preflight(job)
    bad = load_spec(spec_dict(source, tmp_path / "o", pii_locale="en_XX"))
    with pytest.raises(ConfigError, match="pii_locale: Faker has no locale 'en_XX'"):
        generator_class(bad).preflight(bad)


@pytest.mark.parametrize("kind", ["ctgan", "tvae"])
def test_fitted_model_is_cached_and_a_changed_source_refits(tmp_path: Path, kind: str) -> None:
    source = write(people_table(), tmp_path)
    artifacts = LocalStore(tmp_path / "artifacts")
    job = load_spec(spec_dict(source, tmp_path / "out", kind, **KINDS[kind]))
    cls = generator_class(job)
    first = cls.prepare(job, artifacts)
    assert not first["reused"] and len(first["training"]) == KINDS[kind]["epochs"]
    cache = FitCache(artifacts, first["model_key"])
    model = cache.model()
    # sampling-only options (constraints, conditions) reuse the same fit
    other = load_spec(
        spec_dict(source, tmp_path / "out", kind, conditions={"plan": "pro"}, **KINDS[kind])
    )
    again = cls.prepare(other, artifacts)
    assert again["reused"] and again["model_key"] == first["model_key"]
    assert cache.model() == model
    write(people_table(seed=1), tmp_path)
    changed = cls.prepare(job, artifacts)
    assert not changed["reused"] and changed["model_key"] != first["model_key"]
    epochs = load_spec(spec_dict(source, tmp_path / "out", kind, **{**KINDS[kind], "epochs": 2}))
    assert not cls.prepare(epochs, artifacts)["reused"]


def test_a_fit_cached_in_the_old_layout_is_reused(tmp_path: Path) -> None:
    """Single-table fits made before the ``{key}/`` layout (``{key}.model`` and the marker
    ``{key}.meta.json``) are read as they are: reused, the same rows, nothing refitted."""
    job = load_spec(spec_dict(write(people_table(), tmp_path), tmp_path / "out"))
    cls = generator_class(job)

    def rows(artifacts: LocalStore, prepared: dict[str, Any]) -> pa.Table:
        gen = cls(job, GeneratorContext(artifacts=artifacts, prepared=prepared))
        gen.load()
        return gen.generate(ShardTask(0, 0, 200, 7)).table

    new = LocalStore(tmp_path / "new")
    fitted = cls.prepare(job, new)
    key = fitted["model_key"]
    assert new.exists(f"{key}/meta.json") and new.exists(f"{key}/model.model")
    old = LocalStore(tmp_path / "old")
    old.put_bytes(f"{key}.model", new.get_bytes(f"{key}/model.model"))
    old.put_text(f"{key}.meta.json", new.get_text(f"{key}/meta.json"))
    reused = cls.prepare(job, old)
    assert reused["reused"] and reused["model_key"] == key
    assert rows(old, reused).equals(rows(new, fitted))
    assert not old.exists(f"{key}/meta.json"), "an old cache is read, not rewritten"


def test_unique_on_an_id_column_holds_without_rejections(tmp_path: Path) -> None:
    source = write(people_table(), tmp_path)
    spec = spec_dict(
        source, tmp_path / "out", constraints=[{"kind": "unique", "columns": ["account_ref"]}]
    )
    gen, _ = start(tmp_path, spec)
    out = gen.generate(ShardTask(0, 0, 400, 0))
    assert out.table["account_ref"].to_pandas().is_unique and out.rejected is None
    assert out.stats == {"candidates": 400.0, "constraint_rejections": 0.0}
