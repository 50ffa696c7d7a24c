"""Metrics, card and gates inside a real flow: publish when gates pass, quarantine when not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthfactory.dataset import list_versions, open_dataset
from synthfactory.errors import ConfigError, GateFailedError
from synthfactory.storage import open_store
from synthfactory_flows.generate import run_job

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("ray_local", "prefect_server")


def test_penguins_with_metrics_card_and_passing_gates(tmp_path: Path) -> None:
    spec = {
        "name": "penguins",
        "modality": "tabular",
        "rows": 4000,
        "shard_rows": 2000,
        "output": str(tmp_path / "out"),
        "generator": {
            "kind": "gaussian_copula",
            "source": str(ROOT / "examples/data/penguins.csv"),
        },
        "metrics": {"target_column": "species", "sensitive_columns": ["sex"]},
        "gates": {
            "quality.overall": ">= 0.7",
            "privacy.exact_copy_rate": "<= 0.05",
            "privacy.membership_inference_auc": "<= 0.7",
        },
        "resources": {"actors": 2, "num_cpus": 0.5},
    }
    result = run_job(spec)
    ds = open_dataset(result["uri"])
    assert ds.manifest.status == "published" and ds.manifest.metrics == "metrics.json"
    assert all(g["passed"] for g in ds.manifest.gates) and len(ds.manifest.gates) == 3
    report = json.loads(ds.store.get_bytes("metrics.json"))
    # the copula never saw the 69 held-out penguins (stratified by the target)
    assert report["privacy"]["split"] == {
        "train": 275,
        "holdout": 69,
        "fraction": 0.2,
        "seed": 0,
        "stratified_by": "species",
    }
    assert 0.75 <= report["privacy"]["dcr_ratio"] <= 1.3, report["privacy"]
    assert set(report["utility"]["augmentation_lift"]["per_class_recall"]) == {
        "Adelie",
        "Chinstrap",
        "Gentoo",
    }
    assert 0.7 <= report["quality"]["overall"] <= 1.0
    assert report["quality"]["columns"]["species"]["metric"] == "TVComplement"
    assert report["quality"]["columns"]["body_mass_g"]["metric"] == "KSComplement"
    assert report["utility"]["metric"] == "accuracy"
    assert "sex" in report["bias"]["representation"]
    table = pq.read_table(Path(ds.uri) / "metrics.parquet")
    assert "quality.overall" in table["metric"].to_pylist()
    card = (Path(ds.uri) / "README.md").read_text()
    assert card.startswith("---\npretty_name: penguins")
    assert "quality.overall" in card and "## Gates" in card and "## Sample rows" in card
    assert (Path(ds.uri) / "plots" / "correlation.png").read_bytes()[:4] == b"\x89PNG"
    assert "![plots/column_species.png]" in card


def test_biased_dataset_trips_the_parity_gate_and_is_quarantined(tmp_path: Path) -> None:
    reference = tmp_path / "fair.parquet"
    from synthfactory_workers.contract import ShardTask
    from synthfactory_workers.demo import BiasedTable

    pq.write_table(BiasedTable(0.0).generate(ShardTask(0, 0, 3000, 1)), reference)
    out = tmp_path / "out"
    spec = {
        "name": "loans",
        "modality": "tabular",
        "rows": 3000,
        "shard_rows": 1500,
        "output": str(out),
        "generator": {
            "kind": "python",
            "factory": "synthfactory_workers.demo:BiasedTable",
            "options": {"bias": 0.45},
        },
        "metrics": {
            "reference": str(reference),
            "target_column": "approved",
            "sensitive_columns": ["group"],
        },
        "gates": {"bias.demographic_parity_difference": "<= 0.1"},
        "resources": {"actors": 1, "num_cpus": 0.5},
    }
    with pytest.raises(GateFailedError, match=r"demographic_parity_difference <= 0\.1 failed"):
        run_job(spec)
    (version,) = list_versions(open_store(str(out)))
    assert version.status == "quarantined"
    assert version.manifest is not None and not version.manifest.gates[0]["passed"]
    assert version.manifest.gates[0]["value"] > 0.3
    # moved out of the published prefixes, with its report and card
    assert version.prefix.startswith("_quarantine/")
    assert sorted(p.name for p in out.iterdir()) == ["_quarantine"]
    quarantined = Path(version.uri)
    assert (quarantined / "metrics.json").exists() and (quarantined / "README.md").exists()
    kept = open_store(version.uri)
    data = {s.path: kept.get_bytes(s.path) for s in version.manifest.shards}
    with pytest.raises(ConfigError, match="no published dataset"):
        open_dataset(str(out))
    # relaxing the gate (not part of the data's hash) re-checks the same data and publishes
    relaxed = dict(spec, gates={"bias.demographic_parity_difference": "<= 0.9"})
    ds = open_dataset(run_job(relaxed)["uri"])
    assert ds.manifest.status == "published" and not ds.uri.count("_quarantine")
    assert {s.path: ds.store.get_bytes(s.path) for s in ds.manifest.shards} == data
    assert not list((out / "_quarantine").rglob("*.*"))
    # and once more strict: quarantined again
    with pytest.raises(GateFailedError):
        run_job(spec, version="strict")
    ls = subprocess.run(
        [sys.executable, "-m", "synthfactory_flows.cli", "datasets", "ls", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "quarantined" in ls.stdout
    fair = dict(spec, name="loans-fair", output=str(tmp_path / "fair-out"))
    fair["generator"] = {**spec["generator"], "options": {"bias": 0.0}}
    assert open_dataset(run_job(fair)["uri"]).manifest.status == "published"
    assert isinstance(pa.__version__, str)


def test_a_memorising_generator_is_quarantined_by_the_privacy_gates(tmp_path: Path) -> None:
    """A `python` generator copying its training rows (the split of metrics.reference),
    through the whole flow with the default holdout: every privacy gate fails."""
    penguins = str(ROOT / "examples/data/penguins.csv")
    spec = {
        "name": "memoriser",
        "modality": "tabular",
        "rows": 1000,
        "shard_rows": 500,
        "output": str(tmp_path / "out"),
        "generator": {
            "kind": "python",
            "factory": "synthfactory_workers.demo:Memoriser",
            "options": {"source": penguins},
        },
        "metrics": {"reference": penguins},
        "gates": {
            "privacy.dcr_overfitting_protection": ">= 0.8",
            "privacy.membership_inference_auc": "<= 0.6",
            "privacy.exact_copy_rate": "<= 0.01",
        },
        "resources": {"actors": 1, "num_cpus": 0.5},
    }
    with pytest.raises(GateFailedError):
        run_job(spec)
    (version,) = list_versions(open_store(str(tmp_path / "out")))
    assert version.status == "quarantined" and version.manifest is not None
    assert not any(g["passed"] for g in version.manifest.gates), version.manifest.gates
    values = {g["metric"]: g["value"] for g in version.manifest.gates}
    assert values["privacy.dcr_overfitting_protection"] < 0.3
    assert values["privacy.exact_copy_rate"] > 0.99
    assert values["privacy.membership_inference_auc"] > 0.9


def test_a_gate_failure_is_one_message_on_the_console(tmp_path: Path) -> None:
    """With a Prefect server set (PREFECT_API_URL), `run` of a job its gates quarantine
    prints the quarantine and its fix, not Prefect's traceback of the flow."""
    import os

    from prefect.settings import PREFECT_API_URL

    spec = {
        "name": "strict",
        "modality": "tabular",
        "rows": 200,
        "shard_rows": 100,
        "output": str(tmp_path / "out"),
        "generator": {
            "kind": "gaussian_copula",
            "source": str(ROOT / "examples/data/penguins.csv"),
        },
        "gates": {"quality.overall": ">= 0.9999"},
        "resources": {"actors": 1, "num_cpus": 0.5},
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    done = subprocess.run(
        [sys.executable, "-m", "synthfactory_flows.cli", "run", str(path), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "quarantined" in output, output
    assert "fix:" in output and "Traceback" not in output, output
