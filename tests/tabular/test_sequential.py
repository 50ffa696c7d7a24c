"""Sequential synthesis on the Grunfeld panel (statsmodels): the metrics on hand-computed
tables, the model (whole entities, per-step shapes, lag-1 autocorrelation, gaps, context,
variable lengths), seeded determinism, preflight errors through `synthfactory validate`,
and a flow run (Ray, Prefect) on one and two actors with a gate on a sequential metric."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from synthfactory.metrics.tabular.sequential import (
    inter_event_times,
    lag1_autocorrelation,
    sequence_length_similarity,
    sequential_report,
)
from synthfactory.sequences import constant_columns
from synthfactory.spec import load_spec
from synthfactory.storage import LocalStore
from synthfactory_flows.cli import main
from synthfactory_workers.contract import ShardTask, generator_class

from .sequential_tables import grunfeld, sequential_spec, truncated, write
from .tables import loaded_generator


# -- the metrics, by hand -----------------------------------------------------------------
def test_lag1_autocorrelation_by_hand() -> None:
    # A: deviations -1 0 1 (products 0, squares 2); B: -2/3 4/3 -2/3 (products -16/9,
    # squares 24/9): r = (-16/9) / (2 + 24/9) = -8/21
    values = pd.Series([1.0, 2.0, 3.0, 10.0, 12.0, 10.0])
    keys = pd.Series(["A", "A", "A", "B", "B", "B"])
    assert lag1_autocorrelation(values, keys) == pytest.approx(-8 / 21)
    # a null step is left out; levels alone (constant entities) leave r undefined
    with_null = pd.Series([1.0, 2.0, None, 3.0, 10.0, 12.0, 10.0])
    assert lag1_autocorrelation(with_null, pd.Series(list("AAAABBB"))) == pytest.approx(-8 / 21)
    assert np.isnan(lag1_autocorrelation(pd.Series([5.0, 5.0, 7.0, 7.0]), pd.Series(list("AABB"))))


def test_sequence_lengths_and_gaps_by_hand() -> None:
    # lengths 2, 3 vs 3, 3, 3, 1: ECDF gaps 0.25 at 1 and at 2
    real = pd.Series(list("AABBB"))
    synthetic = pd.Series(list("CCCDDDEEEF"))
    assert sequence_length_similarity(real, synthetic) == pytest.approx(0.75)
    gaps = inter_event_times(np.array([1.0, 2.0, 4.0, 0.0, 1.0]), pd.Series(list("AAABB")))
    assert gaps.tolist() == [1.0, 2.0, 1.0]  # never across entities (4 -> 0)


def tiny_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    real = pd.DataFrame(
        {
            "firm": ["A", "A", "A", "B", "B"],
            "year": [1, 2, 4, 0, 1],
            "x": [1.0, 2.0, 3.0, 10.0, 12.0],
            "size": ["x", "x", "x", "y", "y"],
        }
    )
    synthetic = pd.DataFrame(
        {
            "firm": ["C", "C", "C", "D", "D", "D"],
            "year": [5, 6, 7, 0, 1, 2],
            "x": [1.0, 2.0, 3.0, 5.0, 5.0, 8.0],
            "size": ["x", "x", "x", "y", "y", "y"],
        }
    )
    return real, synthetic


def test_sequential_report_by_hand() -> None:
    real, synthetic = tiny_tables()
    assert constant_columns(real, "firm", ["year", "x", "size"]) == ["size"]
    report = sequential_report(real, synthetic, "firm", "year", ["size"])
    # lengths [3, 2] vs [3, 3]: D = 0.5
    assert report["sequence_length_similarity"] == pytest.approx(0.5)
    # gaps [1, 2, 1] vs [1, 1, 1, 1]: D = 1/3
    assert report["inter_event_time_similarity"] == pytest.approx(2 / 3)
    columns = report["columns"]
    # x over steps: [1 2 3 10 12] vs [1 2 3 5 5 8], largest ECDF gap 0.6 - 0.2 at 8
    assert columns["x"] == {
        "score": pytest.approx(0.6),
        "metric": "KSComplement",
        "compared": "steps",
    }
    # the index over steps: [0 1 1 2 4] vs [0 1 2 5 6 7], gap 1 - 0.5 at 4
    assert columns["year"]["score"] == pytest.approx(0.5)
    # size once per entity: x, y on both sides
    assert columns["size"] == {"score": 1.0, "metric": "TVComplement", "compared": "entities"}
    assert report["column_shapes"] == pytest.approx((0.6 + 0.5 + 1.0) / 3)
    # r_real: A 0/2, B -1/2 -> -1/4; r_synthetic: C 0/2, D (-1)/6 -> -1/8
    lag = report["lag1_autocorrelation"]["x"]
    assert (lag["real"], lag["synthetic"]) == (pytest.approx(-0.25), pytest.approx(-0.125))
    assert report["lag1_autocorrelation_similarity"] == pytest.approx(1 - 0.125 / 2)
    assert "year" not in report["lag1_autocorrelation"]  # the index has gaps instead
    assert report["overall"] == pytest.approx((0.5 + 0.7 + 0.9375 + 2 / 3) / 4)
    # rows in any order: the report orders each entity by its index first
    shuffled = sequential_report(
        real.sample(frac=1, random_state=1),
        synthetic.sample(frac=1, random_state=2),
        "firm",
        "year",
        ["size"],
    )
    assert shuffled["overall"] == pytest.approx(report["overall"])


def test_context_columns_are_compared_once_per_entity() -> None:
    real = pd.DataFrame({"k": list("AAABB"), "size": list("xxxyy")})
    synthetic = pd.DataFrame({"k": list("CDEEE"), "size": list("xxyyy")})
    per_entity = sequential_report(real, synthetic, "k", None, ["size"])
    # entities: x 1/2 y 1/2 vs x 2/3 y 1/3 -> 1 - 1/6 (per step it would be 1 - 1/5)
    assert per_entity["columns"]["size"]["score"] == pytest.approx(5 / 6)
    per_step = sequential_report(real, synthetic, "k", None, [])
    assert per_step["columns"]["size"]["score"] == pytest.approx(0.8)
    assert per_entity["inter_event_time_similarity"] is None


def test_lag1_similarity_catches_steps_without_dynamics() -> None:
    """The real panel against itself scores 1; the same values shuffled within each firm
    (right levels and marginals, no dynamics) fall below 0.8."""
    real = grunfeld()
    same = sequential_report(real, real, "firm", "year", [])
    assert same["overall"] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    shuffled = real.copy()
    for rows in shuffled.groupby("firm").groups.values():
        for c in ("invest", "value", "capital"):
            shuffled.loc[rows, c] = rng.permutation(shuffled.loc[rows, c].to_numpy())
    broken = sequential_report(real, shuffled, "firm", "year", [])
    assert broken["column_shapes"] == pytest.approx(1.0)
    assert broken["lag1_autocorrelation_similarity"] < 0.8


# -- the model ------------------------------------------------------------------------------
def generated(gen: Any, rows: int, shard_rows: int, seed: int = 100) -> dict[str, pd.DataFrame]:
    outs = [
        gen.generate(ShardTask(i, s, min(shard_rows, rows - s), seed + i))
        for i, s in enumerate(range(0, rows, shard_rows))
    ]
    return {
        name: pd.concat([o.tables[name].to_pandas() for o in outs], ignore_index=True)
        for name in outs[0].tables
    }


def whole(entities: pd.DataFrame, steps: pd.DataFrame) -> bool:
    """Every entity has exactly its ``sequence_length`` steps, and every step an entity."""
    counts = steps.groupby("firm").size().sort_index()
    wanted = entities.set_index("firm")["sequence_length"].sort_index()
    return bool(counts.index.equals(wanted.index) and (counts == wanted).all())


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Any]:
    """The fixed-length panel and a generator fitted on it (default settings)."""
    folder = tmp_path_factory.mktemp("grunfeld")
    df = grunfeld()
    spec = sequential_spec(write(df, folder, "grunfeld"), str(folder / "out"))
    return df, loaded_generator(folder, spec)


@pytest.fixture(scope="module")
def ragged(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Any]:
    """The truncated panel (4 to 20 years per firm, a `size` context column)."""
    folder = tmp_path_factory.mktemp("truncated")
    df = truncated()
    spec = sequential_spec(write(df, folder, "truncated"), str(folder / "out"))
    return df, loaded_generator(folder, spec)


def test_whole_entities_with_plausible_steps(panel: tuple[pd.DataFrame, Any]) -> None:
    real, gen = panel
    out = generated(gen, 300, 150)
    entities, steps = out["entities"], out["sequences"]
    assert len(entities) == 300 and entities["firm"].is_unique
    assert list(steps.columns) == list(real.columns)
    assert not set(entities["firm"]) & set(real["firm"])  # keys are generated
    assert set(steps["firm"]) == set(entities["firm"])
    per_firm = steps.groupby("firm").size()
    assert whole(entities, steps)
    assert (per_firm == 20).all()  # every source firm has 20 years
    for _, firm in steps.groupby("firm"):  # complete, in order: 1935, 1936, ... 1954
        assert firm["year"].tolist() == list(range(1935, 1955))
    report = sequential_report(real, steps, "firm", "year", [])
    assert report["sequence_length_similarity"] == 1.0
    assert report["inter_event_time_similarity"] == 1.0
    assert report["lag1_autocorrelation_similarity"] >= 0.8, report["lag1_autocorrelation"]
    for column in ("invest", "value", "capital"):
        assert report["columns"][column]["score"] >= 0.75, report["columns"]
        lag = report["lag1_autocorrelation"][column]
        assert lag["synthetic"] > 0.1, lag  # each firm's steps follow the previous one
    assert report["overall"] >= 0.85
    for column in ("invest", "value", "capital"):  # inside the source's range
        assert (
            real[column].min() <= steps[column].min() <= steps[column].max() <= real[column].max()
        )


def test_variable_lengths_and_context(ragged: tuple[pd.DataFrame, Any]) -> None:
    real, gen = ragged
    out = generated(gen, 400, 200)
    entities, steps = out["entities"], out["sequences"]
    assert list(entities.columns) == ["firm", "size", "sequence_length"]  # size: detected
    lengths = steps.groupby("firm").size()
    assert whole(entities, steps)
    assert set(lengths) <= set(real.groupby("firm").size())  # the source's lengths
    assert lengths.nunique() >= 4
    for _, firm in steps.groupby("firm"):  # yearly, starting in 1935
        years = firm["year"].to_numpy()
        assert years[0] == 1935 and (np.diff(years) == 1).all()
    assert (steps.groupby("firm")["size"].nunique() == 1).all()
    report = sequential_report(real, steps, "firm", "year", ["size"])
    assert report["sequence_length_similarity"] >= 0.8
    assert report["columns"]["size"]["compared"] == "entities"
    assert report["overall"] >= 0.8, report
    # the steps follow the context: large firms' market value is far above small ones'
    value = steps.groupby("size")["value"].median()
    real_value = real.groupby("size")["value"].median()
    assert value["large"] > 3 * value["small"], (value, real_value)


def test_same_seed_same_entities_and_an_entity_depends_on_its_seed(
    panel: tuple[pd.DataFrame, Any],
) -> None:
    _, gen = panel
    a = gen.generate(ShardTask(2, 20, 6, 77)).tables["sequences"].to_pandas()
    b = gen.generate(ShardTask(2, 20, 6, 77)).tables["sequences"].to_pandas()
    pd.testing.assert_frame_equal(a, b)
    # the first 3 entities of a 6-entity shard are those of a 3-entity shard, same seed:
    # the same draws (batched float32 arithmetic of another batch size moves values by
    # about 1e-6, relative, which the recursion carries on)
    c = gen.generate(ShardTask(2, 20, 3, 77)).tables["sequences"].to_pandas()
    head = a.iloc[: len(c)].reset_index(drop=True)
    assert len(c) == 60 and head["firm"].tolist() == c["firm"].tolist()
    pd.testing.assert_frame_equal(head, c, check_exact=False, rtol=1e-4, atol=1.01e-3)
    other = gen.generate(ShardTask(2, 20, 6, 78)).tables["sequences"].to_pandas()
    assert not np.allclose(a["invest"], other["invest"])


def test_the_fit_is_cached_and_reloaded(tmp_path: Path, panel: tuple[pd.DataFrame, Any]) -> None:
    real, _ = panel
    spec = sequential_spec(write(real, tmp_path, "g"), str(tmp_path / "out"))
    spec["generator"]["epochs"] = 5
    job = load_spec(spec)
    cls = generator_class(job)
    store = LocalStore(tmp_path / "artifacts")
    first, again = cls.prepare(job, store), cls.prepare(job, store)
    assert (first["reused"], again["reused"]) == (False, True)
    assert first["model_key"] == again["model_key"]
    spec["generator"]["hidden_size"] = 8  # a fit setting: another model
    assert cls.prepare(load_spec(spec), store)["model_key"] != first["model_key"]


# -- preflight: the same `validate` the CLI runs --------------------------------------------
def validate(tmp_path: Path, df: pd.DataFrame, **generator: Any) -> str:
    spec = sequential_spec(write(df, tmp_path, "panel"), str(tmp_path / "out"))
    spec["generator"].update(generator)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    if result.exit_code == 0:
        return result.output
    assert result.exit_code == 2, result.output
    return result.output


def test_preflight_errors_name_the_field_and_the_fix(tmp_path: Path) -> None:
    df = truncated()
    assert validate(tmp_path, df).startswith("ok: ")
    out = validate(tmp_path, df, sequence_key="company")
    assert "generator.sequence_key 'company' is not a column" in out and "fix:" in out
    out = validate(tmp_path, df, sequence_index="yr")
    assert "generator.sequence_index 'yr' is not a column" in out
    out = validate(tmp_path, df, sequence_index="size")
    assert "generator.sequence_index 'size' holds" in out and "not numbers or datetimes" in out
    out = validate(tmp_path, df, context_columns=["size", "sector"])
    assert "generator.context_columns names column(s) not in" in out and "sector" in out
    out = validate(tmp_path, df, context_columns=["size", "invest"])
    assert "generator.context_columns: 'invest' is not constant within entity" in out
    assert "remove 'invest' from context_columns" in out
    out = validate(tmp_path, df, max_length=10)
    assert "more than generator.max_length (10)" in out and "raise generator.max_length" in out
    out = validate(tmp_path, df, sequence_index="firm")
    assert "sequence_index and sequence_key are both 'firm'" in out
    out = validate(tmp_path, df, context_columns=["year"])
    assert "context_columns lists 'year', the sequence key or index" in out
    out = validate(tmp_path, df.assign(report_id=range(len(df))))
    assert "step column(s) {'report_id': 'id'}" in out and "look like identifiers" in out


def test_a_datetime_index(tmp_path: Path) -> None:
    """Dates as the index: the gaps (365 or 366 days: categories) are the source's, and
    the dates keep its precision (days)."""
    df = grunfeld().head(100)  # 5 firms
    df["year"] = pd.to_datetime(df["year"].astype(str) + "-07-01")
    path = tmp_path / "dates.parquet"
    df.to_parquet(path, index=False)
    spec = sequential_spec(str(path), str(tmp_path / "out"), generator={"epochs": 20})
    out = generated(loaded_generator(tmp_path, spec), 20, 20)["sequences"]
    assert pd.api.types.is_datetime64_any_dtype(out["year"].dtype)
    assert (out["year"] == out["year"].dt.normalize()).all()
    for _, firm in out.groupby("firm"):
        years = firm["year"]
        assert years.iloc[0] == pd.Timestamp("1935-07-01")
        assert set(years.diff().dropna().dt.days) <= {365, 366}


def test_categories_nulls_integer_keys_and_no_index(tmp_path: Path) -> None:
    """Without an index the source's row order orders the steps (the year is then a step
    column); a categorical step column keeps its values, a column with nulls its null
    share, and integer entity keys count on past the source's largest."""
    df = grunfeld()
    df["trend"] = np.where(df.groupby("firm")["invest"].diff() < 0, "down", "up")
    rng = np.random.default_rng(0)
    df.loc[rng.random(len(df)) < 0.1, "capital"] = np.nan
    df["firm"] = df["firm"].map({f: i for i, f in enumerate(sorted(df["firm"].unique()))})
    spec = sequential_spec(write(df, tmp_path, "panel"), str(tmp_path / "out"))
    spec["generator"].pop("sequence_index")
    out = generated(loaded_generator(tmp_path, spec), 200, 100)
    entities, steps = out["entities"], out["sequences"]
    assert whole(entities, steps) and list(steps.columns) == list(df.columns)
    assert entities["firm"].tolist() == list(range(11, 211))  # past the largest, 10
    assert set(steps["trend"]) == {"up", "down"}
    assert 0.03 <= steps["capital"].isna().mean() <= 0.2
    report = sequential_report(df, steps, "firm", None, [])
    assert report["inter_event_time_similarity"] is None
    assert report["columns"]["trend"]["score"] >= 0.8
    assert report["lag1_autocorrelation"]["year"]["score"] >= 0.9  # a step column here
    assert report["overall"] >= 0.8, report


# -- the flow: Ray actors, manifest, metrics, gates ------------------------------------------
def flow_spec(source: str, output: str, artifacts: str, actors: int) -> dict[str, Any]:
    return sequential_spec(
        source,
        output,
        resources={"actors": actors, "num_cpus": 0.5},
        storage={"artifacts": artifacts},
        metrics={"enabled": True},
        gates={
            "sequential.overall": ">= 0.6",
            "sequential.sequence_length_similarity": ">= 0.9",
            "sequential.lag1_autocorrelation.invest.score": ">= 0.7",
        },
    )


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_flow_two_actors_equal_one(tmp_path: Path, readers_agree: Callable[[str], None]) -> None:
    import duckdb

    from synthfactory.dataset import open_dataset
    from synthfactory.metrics.evaluators import evaluator_class
    from synthfactory.metrics.report import flatten
    from synthfactory_flows.generate import run_job

    source = write(grunfeld(), tmp_path, "grunfeld")
    artifacts = str(tmp_path / "artifacts")  # shared: the second run reuses the fit
    one = run_job(flow_spec(source, str(tmp_path / "one"), artifacts, 1))
    two = run_job(flow_spec(source, str(tmp_path / "two"), artifacts, 2))
    assert one["status"] == two["status"] == "published" and one["rows"] == 40
    readers_agree(one["uri"])
    readers_agree(two["uri"])
    a, b = open_dataset(one["uri"]), open_dataset(two["uri"])
    assert a.table_names == ["entities", "sequences"]
    for name in a.table_names:
        pd.testing.assert_frame_equal(a.table(name).to_pandas(), b.table(name).to_pandas())
    manifest = a.manifest
    entities, steps = a.table("entities").to_pandas(), a.table("sequences").to_pandas()
    assert manifest.rows == 40 == len(entities) and len(manifest.shards) == 4
    assert manifest.tables["entities"].primary_key == "firm"
    assert manifest.tables["sequences"].rows == len(steps) == 800
    assert manifest.relationships == [
        {"parent": "entities", "child": "sequences", "foreign_key": "firm"}
    ]
    assert entities["firm"].is_unique  # unique across shards
    assert whole(entities, steps)  # every entity complete
    report = json.loads((Path(one["uri"]) / "metrics.json").read_text())
    sequential = report["sequential"]
    assert sequential["entities"]["synthetic"] == 40
    assert sequential["sequence_length_similarity"] == 1.0
    assert sequential["overall"] >= 0.8
    assert report["tables"]["sequences"]["quality"]["overall"] > 0.7
    assert {g["metric"] for g in manifest.gates} == set(flow_spec("", "", "", 1)["gates"])
    assert all(g["passed"] for g in manifest.gates)
    card = (Path(one["uri"]) / "README.md").read_text()
    assert "| `sequential.lag1_autocorrelation_similarity` |" in card
    # the card's Hugging Face header names each table's folder (datasets loads either)
    header = yaml.safe_load(card.split("---")[1])
    assert [c["data_files"] for c in header["configs"]] == [
        "data/entities/*.parquet",
        "data/sequences/*.parquet",
    ]
    names = [name for name, _ in flatten(report)]
    unknown = [n for n in names if not evaluator_class("tabular").knows(n)]
    assert not unknown, f"reported but not declared in TabularEvaluator.names: {unknown}"
    root = one["uri"]
    joined = duckdb.sql(
        f"select count(*), count(distinct e.firm) from '{root}/data/entities/*.parquet' e "
        f"join '{root}/data/sequences/*.parquet' s using (firm)"
    )
    assert joined is not None and joined.fetchall() == [(800, 40)]
