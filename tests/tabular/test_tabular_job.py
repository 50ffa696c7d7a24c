"""The quickstart job end to end: CLI -> Prefect -> Ray -> Parquet, locally and on S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthfactory.dataset import open_dataset
from synthfactory.storage import open_store
from synthfactory_flows.generate import run_job

from .tables import TINY_TVAE, people_table, spec_dict, write

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "tabular_penguins.yaml"


def test_quickstart_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PREFECT_API_URL")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    out = tmp_path / "penguins"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "synthfactory_flows.cli",
            "run",
            str(SPEC),
            "--output",
            str(out),
            "--rows",
            "20000",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "status: published, rows: 20000, shards: 1" in run.stdout
    assert "species: string" in run.stdout
    df = pd.read_parquet(out / open_dataset(str(out)).manifest.version / "data")
    assert len(df) == 20000
    assert set(df["species"]) == {"Adelie", "Gentoo", "Chinstrap"}
    ls = subprocess.run(
        [sys.executable, "-m", "synthfactory_flows.cli", "datasets", "ls", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "published" in ls.stdout and "20000" in ls.stdout
    show = subprocess.run(
        [sys.executable, "-m", "synthfactory_flows.cli", "datasets", "show", str(out), "-n", "3"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "bill_length_mm: double" in show.stdout and "Adelie" in show.stdout


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_source_and_output_on_s3(s3_bucket: str) -> None:
    source = open_store(f"{s3_bucket}/sources")
    source.put_bytes("penguins.csv", (ROOT / "examples/data/penguins.csv").read_bytes())
    spec = {
        "name": "penguins",
        "modality": "tabular",
        "rows": 3000,
        "shard_rows": 1000,
        "seed": 5,
        "output": f"{s3_bucket}/synthetic/penguins",
        "generator": {"kind": "gaussian_copula", "source": f"{s3_bucket}/sources/penguins.csv"},
        "resources": {"actors": 2, "num_cpus": 0.5},
    }
    first = run_job(spec)
    ds = open_dataset(first["uri"])
    assert ds.manifest.rows == 3000 and len(ds.manifest.shards) == 3
    assert "source_sha256" in ds.manifest.fingerprints
    keys = open_store(f"{s3_bucket}/synthetic/penguins").list("_artifacts/")
    assert any(k.endswith(".json") for k in keys), "the fitted copula is cached on S3"
    # same spec, new output version label: the cached fit is reused, same rows come out
    again = run_job(spec, version="again")
    assert open_dataset(again["uri"]).to_arrow().equals(ds.to_arrow())


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_tvae_job_balances_with_constraints_on_the_pool(tmp_path: Path) -> None:
    """A TVAE fitted once, sampled by two actors: a combined, balanced dataset (its row count
    derived from the source) whose rows all meet the constraints, with the rejections in the
    manifest and no source email copied."""
    real = people_table(200)
    source = write(real, tmp_path)
    counts = real["plan"].value_counts()
    rows = len(real) + int((counts.max() - counts).sum())
    spec = spec_dict(
        source,
        tmp_path / "out",
        "tvae",
        augment={"balance": "plan", "combined": True},
        constraints=[{"kind": "range", "column": "amount", "min": 100, "max": 200}],
        **TINY_TVAE,
    )
    del spec["rows"]  # derived: exactly the rows that balance the classes, plus the source
    spec.update(shard_rows=150, resources={"actors": 2, "num_cpus": 0.5})
    ds = open_dataset(run_job(spec)["uri"])
    df = ds.to_arrow().to_pandas()
    assert len(df) == rows and (df["plan"].value_counts() == counts.max()).all()
    synthetic = df[df["is_synthetic"]]
    assert synthetic["amount"].between(100, 200).all()
    assert not set(synthetic["contact"]) & set(real["contact"])
    assert ds.manifest.rejected_rows > 0
    assert ds.manifest.stats["constraint_rejections"] == ds.manifest.rejected_rows
    assert "candidate rows rejected" in ds.store.get_text("README.md")
    report = json.loads(ds.store.get_bytes("metrics.json"))
    assert report["rows_scored"] == len(synthetic) and "synthetic rows only" in report["scored"]
    # the fit's loss per epoch reached Prefect as a table artifact, and the metrics too
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["t-training", "t-metrics"]))
        )
    by_key = {a.key: a for a in found}
    assert set(by_key) == {"t-training", "t-metrics"}
    # every epoch was logged by the prepare task (polled while the fit ran)
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    run_id = ds.manifest.flow_run["id"]
    lines: list[str] = []
    for _ in range(40):
        with get_client(sync_client=True) as client:
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
            )
        lines = [log.message for log in logs]
        if any("tvae epoch 3:" in line for line in lines):
            break
        time.sleep(0.5)
    assert [m for m in lines if m.startswith("tvae epoch")][:3] == [
        m for m in lines if m.startswith("tvae epoch")
    ]
    assert sum(m.startswith("tvae epoch") for m in lines) == 3, lines
    epochs = by_key["t-training"].data
    epochs = json.loads(epochs) if isinstance(epochs, str) else epochs
    assert [int(e["epoch"]) for e in epochs] == [1, 2, 3]
    assert all(np.isfinite(e["loss"]) for e in epochs)


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_jobs_share_one_fit_through_storage_artifacts(tmp_path: Path) -> None:
    source = write(people_table(120), tmp_path)
    shared = tmp_path / "models"
    for name in ("first", "second"):
        spec = spec_dict(source, tmp_path / name, rows=200)
        spec["storage"] = {"artifacts": str(shared)}
        run_job(spec)
        assert not (tmp_path / name / "_artifacts").exists()
    models = list(shared.rglob("*.model"))
    assert len(models) == 1  # the second job reused the first one's fit


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_unique_holds_across_shards(tmp_path: Path, readers_agree: Callable[[str], None]) -> None:
    """Each shard keeps its rows unique; the whole-dataset pass drops rows an earlier shard
    already holds and tops the dataset up."""
    source = write(people_table(300), tmp_path)
    spec = spec_dict(
        source,
        tmp_path / "out",
        rows=30,
        constraints=[{"kind": "unique", "columns": ["plan", "count"]}],
    )
    spec.update(shard_rows=10, top_up_rounds=10)
    ds = open_dataset(run_job(spec)["uri"])
    readers_agree(ds.uri)
    df = ds.to_arrow().to_pandas()
    assert len(df) == 30 and not df[["plan", "count"]].astype(str).duplicated().any()
    assert ds.manifest.stats["dropped_unique_violation"] > 0  # shards did collide
    assert "__unique_0" not in df.columns
    card = ds.store.get_text("README.md")
    assert "dropped by the whole-dataset pass: unique_violation" in card


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_balance_stays_exact_when_unique_drops_rows_across_shards(
    tmp_path: Path, readers_agree: Callable[[str], None]
) -> None:
    """Rows the whole-dataset unique pass drops are topped up class by class and the surplus
    trimmed per class: every class ends at exactly the largest class's count, every source
    row (unlabelled ones too) is kept, and the synthetic rows stay unique."""
    rng = np.random.default_rng(3)
    real = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "pro", "team"], 300, p=[0.6, 0.3, 0.1]).astype(object),
            "bucket": rng.integers(0, 400, 300),
            "amount": np.round(rng.normal(100, 15, 300), 2),
        }
    )
    real.loc[:9, "plan"] = None
    source = write(real, tmp_path)
    counts = real["plan"].value_counts()
    spec = spec_dict(
        source,
        tmp_path / "out",
        augment={"balance": "plan", "combined": True},
        constraints=[{"kind": "unique", "columns": ["plan", "bucket"]}],
    )
    del spec["rows"]
    spec.update(shard_rows=40, top_up_rounds=10)
    ds = open_dataset(run_job(spec)["uri"])
    df = ds.to_arrow().to_pandas()
    assert ds.manifest.stats["dropped_unique_violation"] > 0  # shards did collide
    assert ds.manifest.stats["top_up_rounds"] >= 1 and ds.manifest.target_met
    readers_agree(ds.uri)  # class-balancing trims leave no stray file
    assert df["plan"].value_counts().to_dict() == dict.fromkeys(counts.index, counts.max())
    assert df["plan"].isna().sum() == 10 and (~df["is_synthetic"]).sum() == len(real)
    synthetic = df[df["is_synthetic"]]
    assert not synthetic[["plan", "bucket"]].astype(str).duplicated().any()
