"""The whole path for real: Prefect flow -> local Ray actor pool -> Parquet + manifest."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import fastparquet
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthfactory.dataset import open_dataset
from synthfactory.errors import GenerationError
from synthfactory.storage import open_store
from synthfactory_flows.generate import run_job

from .helpers import sequence_spec

pytestmark = pytest.mark.usefixtures("ray_local", "prefect_server")


def assert_exact(uri: str, rows: int) -> pa.Table:
    ds = open_dataset(uri)
    table = ds.to_arrow()
    assert ds.manifest.rows == rows == len(table)
    indexes = [s.index for s in ds.manifest.shards]
    assert indexes == sorted(set(indexes)), "a shard appears twice"
    assert table["id"].to_pylist() == list(range(rows)), "rows missing or duplicated"
    return table


def test_local_run_publishes_and_rerun_is_a_no_op(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_job(sequence_spec(str(out), rows=1000, shard_rows=300))
    assert result["rows"] == 1000 and result["shards"] == 4
    table = assert_exact(str(out), 1000)
    ds = open_dataset(str(out))
    m = ds.manifest
    assert m.status == "published" and m.seeds["master"] == 11
    assert len({s.seed for s in m.shards}) == 4
    assert all(s.sha256 and s.bytes for s in m.shards)
    assert m.lineage["libraries"]["pyarrow"] == pa.__version__
    assert m.generator["factory"].endswith("SequenceGenerator")
    assert m.data_schema.to_arrow() == table.schema
    assert m.flow_run["id"]
    # the same spec again: the dataset is complete, nothing is regenerated
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    again = run_job(sequence_spec(str(out), rows=1000, shard_rows=300))
    assert again["already_complete"] and again["uri"] == result["uri"]
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}


def test_same_spec_same_rows_and_seed_changes_them(tmp_path: Path) -> None:
    a = run_job(sequence_spec(str(tmp_path / "a"), rows=400, shard_rows=100))
    b = run_job(sequence_spec(str(tmp_path / "b"), rows=400, shard_rows=100, actors=1))
    ta, tb = open_dataset(a["uri"]).to_arrow(), open_dataset(b["uri"]).to_arrow()
    assert ta.equals(tb)
    spec = sequence_spec(str(tmp_path / "c"), rows=400, shard_rows=100)
    spec["seed"] = 12
    tc = open_dataset(run_job(spec)["uri"]).to_arrow()
    assert not np.allclose(ta["value"].to_numpy(), tc["value"].to_numpy())


def test_s3_run_over_http(s3_bucket: str) -> None:
    uri = f"{s3_bucket}/datasets/seq"
    result = run_job(sequence_spec(uri, rows=600, shard_rows=200))
    assert result["uri"].startswith(uri + "/v-")
    assert_exact(uri, 600)
    keys = open_store(uri).list()
    assert any(k.endswith("manifest.json") for k in keys)
    assert sum(k.endswith(".parquet") and "/data/" in k for k in keys) == 3


def test_killed_actor_is_replaced_and_shard_retried(tmp_path: Path) -> None:
    faults = tmp_path / "faults"
    spec = sequence_spec(
        str(tmp_path / "out"), rows=800, shard_rows=200, crash_on_shard=2, fault_dir=str(faults)
    )
    run_job(spec)
    assert (faults / "crash-2").exists(), "the fault never fired"
    assert_exact(str(tmp_path / "out"), 800)
    calls = (faults / "calls.log").read_text().split()
    assert calls.count("2") == 2, "shard 2 ran once, died, and ran once more"


def test_write_failing_once_is_retried(tmp_path: Path) -> None:
    out = tmp_path / "out"
    faults = tmp_path / "faults"
    spec = sequence_spec(
        str(out),
        rows=600,
        shard_rows=200,
        block_write_on_shard=1,
        fault_dir=str(faults),
        output_dir=str(out),
    )
    run_job(spec)
    assert (faults / "block-1").exists(), "the fault never fired"
    assert_exact(str(out), 600)


def test_user_error_fails_fast_without_retry_or_manifest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    faults = tmp_path / "faults"
    spec = sequence_spec(
        str(out), rows=400, shard_rows=100, actors=1, fail_on_shard=1, fault_dir=str(faults)
    )
    with pytest.raises(GenerationError, match="asked to fail"):
        run_job(spec)
    assert (faults / "calls.log").read_text().split().count("1") == 1
    assert not list(out.rglob("manifest.json"))
    # fix the spec problem: the committed shards are kept, only the rest is generated
    committed = {p.name: p.stat().st_mtime_ns for p in out.rglob("data/*.parquet")}
    spec["generator"]["options"].pop("fail_on_shard")
    # a changed spec is a new version; to show resume we re-run the *same* version label
    from synthfactory.dataset import list_versions

    label = list_versions(open_store(str(out)))[0].prefix
    with pytest.raises(Exception, match="different job"):
        run_job(spec, version=label)
    assert committed


def test_readers_agree_on_every_value(tmp_path: Path) -> None:
    # 40k rows of ~48-byte unique strings per shard: a dictionary page would overflow
    out = tmp_path / "out"
    result = run_job(sequence_spec(str(out), rows=80_000, shard_rows=40_000, text_length=40))
    ds = open_dataset(result["uri"])
    truth = ds.to_arrow().to_pandas()
    assert truth["text"].nunique() == 80_000
    files = [str(Path(f)) for f in ds.files]
    via_pandas = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    via_duck = duckdb.sql(f"select * from read_parquet({files!r}) order by id").df()
    via_fastparquet = fastparquet.ParquetFile(files).to_pandas()
    via_dataset = ds.arrow_dataset().to_table().to_pandas()
    for name, frame in [
        ("pandas", via_pandas),
        ("duckdb", via_duck),
        ("fastparquet", via_fastparquet),
        ("pyarrow.dataset", via_dataset),
    ]:
        frame = frame.sort_values("id").reset_index(drop=True)
        for column in truth.columns:
            got = frame[column].astype(object).tolist()
            assert got == truth[column].astype(object).tolist(), f"{name} differs on {column}"
    # the raw file bytes are what the manifest says
    first = ds.manifest.shards[0]
    blob = Path(files[0]).read_bytes()
    assert len(blob) == first.bytes
    assert pq.read_table(io.BytesIO(blob)).num_rows == first.rows


def test_a_failure_after_generation_is_said_not_evaluating_forever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from synthfactory_flows import publish

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("metrics exploded")

    monkeypatch.setattr(publish, "compute_metrics", boom)
    spec = sequence_spec(str(tmp_path / "out"), rows=20, shard_rows=10)
    spec["metrics"] = {"enabled": True}
    with pytest.raises(RuntimeError, match="metrics exploded"):
        run_job(spec)
    (progress,) = (tmp_path / "out").glob("*/_progress.json")
    state = json.loads(progress.read_text())
    assert state["state"] == "failed" and "metrics exploded" in state["message"]
