"""Text metrics inside a real flow: computed shard by shard on Ray, merged, gated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synthfactory.dataset import list_versions
from synthfactory.errors import GateFailedError
from synthfactory.storage import open_store
from synthfactory_flows.generate import run_job

from .encoders import tiny_clip

pytestmark = pytest.mark.usefixtures("ray_local", "prefect_server")


def test_planted_duplicates_and_emails_across_shards_are_caught(tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = {
        "name": "planted",
        "modality": "text",
        "rows": 1000,
        "shard_rows": 250,
        "output": str(out),
        "generator": {
            "kind": "python",
            "factory": "synthfactory_workers.demo:PlantedTexts",
            "options": {"copy_every": 10, "email_every": 25},
        },
        "metrics": {
            "model_sample": 200,
            "groups": {"female": ["she", "her"], "male": ["he", "him"]},
        },
        "gates": {
            "quality.exact_duplicate_rate": "<= 0.01",
            "privacy.pii_email_rate": "== 0",
        },
        "resources": {"actors": 2, "num_cpus": 0.5},
    }
    with pytest.raises(GateFailedError, match=r"exact_duplicate_rate <= 0\.01 failed"):
        run_job(spec)
    (version,) = list_versions(open_store(str(out)))
    assert version.status == "quarantined"
    report = json.loads((Path(version.uri) / "metrics.json").read_text())
    q, p = report["quality"], report["privacy"]
    # rows 10, 20, ..., 990 repeat row 0: 99 copies over all four shards, not one shard's
    assert q["exact_duplicate_rate"] == pytest.approx(99 / 1000)
    assert p["pii_email_rate"] == pytest.approx(40 / 1000)
    assert report["rows_scored"] == 1000 and q["rows_sampled"] == 200
    assert 0 < q["distinct_1"] < 1 and q["chars_p50"] > 0
    assert q["embedding"]["diversity"] > 0  # MiniLM, in a Ray task
    assert q["perplexity"] == {"not_applicable": "set metrics.perplexity_model"}
    # the completions never name a group; the counterfactual test needs an LLM generator
    mentions = report["bias"]["mentions"]
    assert mentions["n"] == 1000 and mentions["texts_with_no_group"] == 1000
    assert "not_applicable" in report["bias"]["counterfactual"]
    card = (Path(version.uri) / "README.md").read_text()
    assert "quality.exact_duplicate_rate" in card and "plots/text_lengths.png" in card


def test_metrics_cli_scores_existing_text_and_image_datasets(tmp_path: Path) -> None:
    """`synthfactory metrics URI` on datasets generated without metrics."""
    text = {
        "name": "plain",
        "modality": "text",
        "rows": 400,
        "shard_rows": 100,
        "output": str(tmp_path / "text"),
        "generator": {
            "kind": "python",
            "factory": "synthfactory_workers.demo:PlantedTexts",
        },
        "metrics": {"enabled": False, "model_sample": 50},
        "resources": {"actors": 1, "num_cpus": 0.5},
    }
    image = {
        **text,
        "name": "pics",
        "modality": "image",
        "output": str(tmp_path / "image"),
        "generator": {
            "kind": "python",
            "factory": "synthfactory_workers.demo:SequenceGenerator",
            "options": {"image_size": 16},
        },
    }
    encoder = tiny_clip(tmp_path / "clip")
    for spec, options in ((text, []), (image, ["--image-encoder", encoder])):
        uri = run_job(spec)["uri"]
        assert not (Path(uri) / "metrics.json").exists()
        done = subprocess.run(
            [sys.executable, "-m", "synthfactory_flows.cli", "metrics", uri, "--json", *options],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads((Path(uri) / "metrics.json").read_text())
        assert json.loads(done.stdout[done.stdout.index("{") :]) == report
        assert report["modality"] == spec["modality"] and report["rows_scored"] == 400
        manifest = json.loads((Path(uri) / "manifest.json").read_text())
        assert manifest["metrics"] == "metrics.json"
    assert report["quality"]["sizes"] == {"16x16": 400}  # the image dataset
    embedding = report["quality"]["embedding"]
    assert embedding["encoder"] == encoder and embedding["images_scored"] == 50
    assert 0 < embedding["diversity"] <= 2
