"""Relational synthesis: spec and preflight errors, the modelling (children counts, per-row
conditional sampling), key integrity, multi-table shards; flow runs (Ray, Prefect) on one
and two actors and on S3, read back with open_dataset and DuckDB."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from synthfactory.errors import ConfigError, SpecError
from synthfactory.spec import load_spec
from synthfactory_workers.contract import ShardTask, generator_class
from synthfactory_workers.tabular.copula import GaussianCopula

from .relational_tables import penguin_tables, relational_spec, write_tables
from .tables import loaded_generator


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return write_tables(tmp_path_factory.mktemp("penguin-tables"))


def generated(gen: Any, rows: int, shard_rows: int) -> dict[str, pd.DataFrame]:
    outs = [
        gen.generate(ShardTask(i, s, min(shard_rows, rows - s), 1000 + i))
        for i, s in enumerate(range(0, rows, shard_rows))
    ]
    return {
        name: pd.concat([o.tables[name].to_pandas() for o in outs], ignore_index=True)
        for name in outs[0].tables
    }


def preflight_error(paths: dict[str, str], tmp_path: Path, **generator: Any) -> str:
    spec = relational_spec(paths, str(tmp_path / "out"))
    spec["generator"] = {**spec["generator"], **generator}
    job = load_spec(spec)
    with pytest.raises(ConfigError) as info:
        generator_class(job).preflight(job)
    return str(info.value)


# -- the conditional draw ---------------------------------------------------------------
def test_sample_given_is_the_conditional_normal() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 5000)
    df = pd.DataFrame({"x": x, "y": 0.8 * x + 0.6 * rng.normal(0, 1, 5000)})
    model = GaussianCopula(seed=0)
    model.fit(df, {"x": "numerical", "y": "numerical"})
    given = pd.DataFrame({"x": np.repeat([-1.5, 0.0, 1.5], 4000)})
    out = model.sample_given(given, seed=1)
    assert (out["x"].to_numpy() == given["x"].to_numpy()).all()
    for value in (-1.5, 0.0, 1.5):  # E[y | x] = 0.8 x, sd sqrt(1 - 0.64) = 0.6
        y = out.loc[out["x"] == value, "y"]
        assert abs(y.mean() - 0.8 * value) < 0.06
        assert abs(y.std() - 0.6) < 0.06


def test_sample_given_categories_and_unknown_values() -> None:
    rng = np.random.default_rng(0)
    kind = rng.choice(["small", "large"], 4000)
    size = np.where(kind == "large", 10.0, 1.0) + rng.normal(0, 0.5, 4000)
    model = GaussianCopula(seed=0)
    model.fit(
        pd.DataFrame({"kind": kind, "size": size}), {"kind": "categorical", "size": "numerical"}
    )
    given = pd.DataFrame({"kind": ["large"] * 500 + ["small"] * 500 + ["never-seen"] * 10})
    out = model.sample_given(given, seed=2)
    # as the copula's exact single-value conditioning: within a Gaussian copula's reach
    same = model.sample(500, 2, {"kind": "large"})["size"].mean()
    assert abs(out["size"][:500].mean() - same) < 0.5
    assert out["size"][:500].mean() > out["size"][500:1000].mean() + 4
    assert len(out) == 1010 and out["size"].notna().all()


# -- spec and preflight -----------------------------------------------------------------
def test_structure_errors_are_named(paths: dict[str, str], tmp_path: Path) -> None:
    rel = relational_spec(paths, "x")["generator"]["relationships"]
    unknown = [*rel, {"parent": "islands", "child": "nests", "foreign_key": "island_id"}]
    assert "unknown table 'nests'" in preflight_error(paths, tmp_path, relationships=unknown)
    two = [*rel, {"parent": "islands", "child": "penguins", "foreign_key": "island_id"}]
    message = preflight_error(paths, tmp_path, relationships=two)
    assert "relationships[2].foreign_key 'island_id' (of islands -> penguins)" in message
    again = [*rel, {"parent": "colonies", "child": "penguins", "foreign_key": "sex"}]
    message = preflight_error(paths, tmp_path, relationships=again)
    assert "'penguins' has several parents" in message and "ambiguous" in message
    assert "context: true" in message
    both = [{**r, "context": True} for r in again]
    assert "2 context parents" in preflight_error(paths, tmp_path, relationships=both)
    cycle = [rel[1], {"parent": "penguins", "child": "islands", "foreign_key": "colony_id"}, rel[0]]
    assert "cycle" in preflight_error(paths, tmp_path, relationships=cycle)
    self_ref = [{"parent": "islands", "child": "islands", "foreign_key": "island_id"}]
    assert "its own parent" in preflight_error(paths, tmp_path, relationships=self_ref)
    assert "not linked to it: ['penguins']" in preflight_error(
        paths, tmp_path, relationships=rel[:1]
    )


def test_column_errors_are_named(paths: dict[str, str], tmp_path: Path) -> None:
    spec = relational_spec(paths, "x")["generator"]
    tables = {**spec["tables"], "islands": {"source": paths["islands"], "primary_key": "nope"}}
    assert "primary_key 'nope' is not a column" in preflight_error(paths, tmp_path, tables=tables)
    rel = [
        spec["relationships"][0],
        {"parent": "colonies", "child": "penguins", "foreign_key": "colony"},
    ]
    message = preflight_error(paths, tmp_path, relationships=rel)
    assert "foreign_key 'colony' (of colonies -> penguins) is not a column" in message
    tables = {**spec["tables"], "colonies": {"source": paths["colonies"], "primary_key": "species"}}
    assert "not unique" in preflight_error(paths, tmp_path, tables=tables)
    tables = {**spec["tables"], "islands": {"source": paths["islands"]}}
    assert "has no primary_key" in preflight_error(paths, tmp_path, tables=tables)
    tables = {
        **spec["tables"],
        "penguins": {"source": paths["penguins"], "column_types": {"beak": "numerical"}},
    }
    assert "column_types names column(s) not in" in preflight_error(paths, tmp_path, tables=tables)


def test_unknown_fields_fail_at_load(paths: dict[str, str]) -> None:
    spec = relational_spec(paths, "x")
    spec["generator"]["synthesizer"] = "ctgan"
    with pytest.raises(SpecError):
        load_spec(spec)


# -- the modelling ----------------------------------------------------------------------
def test_integrity_keys_and_cardinality(paths: dict[str, str], tmp_path: Path) -> None:
    from synthfactory.metrics.tabular.relational import cardinality_shape_similarity

    gen = loaded_generator(tmp_path, relational_spec(paths, str(tmp_path / "out")))
    out = generated(gen, 600, 200)
    real = penguin_tables()
    islands, colonies, penguins = out["islands"], out["colonies"], out["penguins"]
    assert len(islands) == 600
    assert islands["island_id"].is_unique and colonies["colony_id"].is_unique
    assert colonies["island_id"].isin(islands["island_id"]).all()
    assert penguins["colony_id"].isin(colonies["colony_id"]).all()
    assert list(penguins.columns) == list(real["penguins"].columns)
    assert not set(islands["island_id"]) & set(real["islands"]["island_id"])  # never a source key
    for parent, child, key in (
        ("islands", "colonies", "island_id"),
        ("colonies", "penguins", "colony_id"),
    ):
        score = cardinality_shape_similarity(
            real[parent][key], real[child][key], out[parent][key], out[child][key]
        )
        assert score >= 0.8, (parent, child, score)


def test_children_follow_their_parent(paths: dict[str, str], tmp_path: Path) -> None:
    """Penguins are drawn conditioned on their colony's species: Gentoo colonies get heavy
    penguins, as in the source."""
    gen = loaded_generator(tmp_path, relational_spec(paths, str(tmp_path / "out")))
    out = generated(gen, 400, 200)
    joined = out["penguins"].merge(out["colonies"], on="colony_id")
    mass = joined.groupby("species")["body_mass_g"].mean()
    real = penguin_tables()
    real_mass = (
        real["penguins"]
        .merge(real["colonies"], on="colony_id")
        .groupby("species")["body_mass_g"]
        .mean()
    )
    assert mass["Gentoo"] > mass["Adelie"] + 800
    assert abs(mass["Gentoo"] - real_mass["Gentoo"]) < 450  # a copula smooths a little
    # Torgersen (in the source: Adelie only, 3 colonies) -> colonies follow the island
    torgersen = out["colonies"].merge(out["islands"], on="island_id")
    assert (torgersen.loc[torgersen["island"] == "Torgersen", "species"] == "Adelie").mean() > 0.8


def test_same_seed_same_tables(paths: dict[str, str], tmp_path: Path) -> None:
    spec = relational_spec(paths, str(tmp_path / "out"))
    a = generated(loaded_generator(tmp_path / "a", spec), 40, 20)
    b = generated(loaded_generator(tmp_path / "b", spec), 40, 20)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])


# -- the flow: Ray actors, manifest, metrics, readers -----------------------------------
def flow_spec(paths: dict[str, str], output: str, actors: int) -> dict[str, Any]:
    return relational_spec(
        paths,
        output,
        resources={"actors": actors},
        metrics={"enabled": True, "max_rows": 20_000},
        gates={
            "relationships.islands.colonies.referential_integrity": "== 1",
            "relationships.colonies.penguins.referential_integrity": "== 1",
            "relationships.colonies.penguins.cardinality_shape_similarity": ">= 0.8",
        },
    )


def sorted_tables(uri: str) -> dict[str, pd.DataFrame]:
    from synthfactory.dataset import open_dataset

    ds = open_dataset(uri)
    return {name: ds.table(name).to_pandas() for name in ds.table_names}


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_flow_two_actors_equal_one(
    paths: dict[str, str], tmp_path: Path, readers_agree: Callable[[str], None]
) -> None:
    import duckdb

    from synthfactory.dataset import open_dataset
    from synthfactory_flows.generate import run_job

    one = run_job(flow_spec(paths, str(tmp_path / "one"), 1))
    two = run_job(flow_spec(paths, str(tmp_path / "two"), 2))
    assert one["status"] == two["status"] == "published" and one["rows"] == 60
    readers_agree(one["uri"])
    readers_agree(two["uri"])
    a, b = sorted_tables(one["uri"]), sorted_tables(two["uri"])
    assert list(a) == ["islands", "colonies", "penguins"]
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    ds = open_dataset(one["uri"])
    manifest = ds.manifest
    assert manifest.rows == 60 and manifest.tables["islands"].rows == 60
    assert manifest.tables["penguins"].rows == len(a["penguins"]) > 60
    assert manifest.tables["colonies"].primary_key == "colony_id"
    assert manifest.relationships[1] == {
        "parent": "colonies",
        "child": "penguins",
        "foreign_key": "colony_id",
    }
    assert [s.path for s in manifest.shards] == [
        f"data/islands/part-{i:05d}.parquet" for i in range(3)
    ]
    report = __import__("json").loads((Path(one["uri"]) / "metrics.json").read_text())
    links = report["relationships"]
    assert links["islands"]["colonies"]["referential_integrity"] == 1.0
    assert links["colonies"]["penguins"]["referential_integrity"] == 1.0
    assert links["colonies"]["penguins"]["cardinality_shape_similarity"] >= 0.8
    assert report["tables"]["penguins"]["quality"]["overall"] > 0.7
    assert all(g["passed"] for g in manifest.gates)
    root = one["uri"]
    joined = duckdb.sql(
        f"select c.species, count(*) as n, avg(p.body_mass_g) as mass "
        f"from '{root}/data/islands/*.parquet' i "
        f"join '{root}/data/colonies/*.parquet' c using (island_id) "
        f"join '{root}/data/penguins/*.parquet' p using (colony_id) "
        f"group by c.species order by c.species"
    ).fetchall()
    assert sum(row[1] for row in joined) == len(a["penguins"])


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_a_killed_actor_loses_no_subtree_and_duplicates_none(
    paths: dict[str, str], tmp_path: Path, actor_killer: Any
) -> None:
    """The actor is SIGKILLed once a shard has committed; the retried shards regenerate
    whole subtrees, so the dataset equals an uninterrupted run of the same spec."""
    from synthfactory_flows.generate import run_job

    def spec(output: Path) -> dict[str, Any]:
        return relational_spec(paths, str(output), rows=400, shard_rows=10)

    killed = actor_killer(tmp_path / "killed")
    hit = run_job(spec(tmp_path / "killed"))
    assert killed, "no actor was killed"
    clean = run_job(spec(tmp_path / "clean"))
    a, b = sorted_tables(hit["uri"]), sorted_tables(clean["uri"])
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    islands, colonies, penguins = a["islands"], a["colonies"], a["penguins"]
    assert len(islands) == 400 and islands["island_id"].is_unique
    assert colonies["colony_id"].is_unique
    assert set(colonies["island_id"]) <= set(islands["island_id"])
    assert set(penguins["colony_id"]) <= set(colonies["colony_id"])


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_flow_on_s3_joins_in_duckdb(paths: dict[str, str], s3_bucket: str) -> None:
    import duckdb

    from synthfactory.dataset import open_dataset
    from synthfactory_flows.generate import run_job

    spec = flow_spec(paths, f"{s3_bucket}/penguins", 1)
    result = run_job(spec)
    assert result["status"] == "published"
    ds = open_dataset(f"{s3_bucket}/penguins")
    assert ds.table_files("penguins")[0].startswith(f"{s3_bucket}/penguins/")
    islands = ds.arrow_dataset("islands")  # noqa: F841  (scanned by DuckDB by name)
    colonies = ds.arrow_dataset("colonies")  # noqa: F841
    penguins = ds.arrow_dataset("penguins")  # noqa: F841
    rows = duckdb.sql(
        "select count(*), count(distinct i.island_id) from penguins p "
        "join colonies c using (colony_id) join islands i using (island_id)"
    ).fetchall()
    assert rows[0][0] == ds.manifest.tables["penguins"].rows
    assert rows[0][1] <= 60
    orphans = duckdb.sql(
        "select count(*) from penguins p anti join colonies c using (colony_id)"
    ).fetchall()
    assert orphans[0][0] == 0
