"""The vllm backend through the whole platform: a vllm.LLM engine inside the Ray actor,
which runs on .venv-vllm's interpreter (runtime_env py_executable), on SmolLM2 exported as
a Hugging Face folder. CPU vLLM is slow (load ≈ 45 s, ≈ 16 tokens/s): a handful of rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pyarrow as pa
import pytest

from synthfactory.dataset import open_dataset
from synthfactory_flows.generate import run_job
from synthfactory_workers.text.kinds.prompt import row_seed

from .servers import VLLM_PYTHON, smollm2_folder

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("ray_local", "prefect_server"),
    pytest.mark.skipif(
        not VLLM_PYTHON.exists(),
        reason=f"no vLLM environment at {VLLM_PYTHON.parent.parent}: "
        "run bash scripts/install_vllm.sh",
    ),
]

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def model() -> str:
    return str(smollm2_folder())


def job(output: Path, model: str, rows: int, **generator: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "kind": "llm",
        "model": model,
        "backend": {
            "kind": "vllm",
            "python": str(VLLM_PYTHON),
            "max_model_len": 1024,
            "enforce_eager": True,
            "kv_cache_space_gb": 1,
        },
        "prompt": {
            "template": "Name one {{ thing }}.",
            "variables": {"thing": ["fruit", "color", "animal", "tool"]},
        },
        "sampling": {"max_new_tokens": 12},
        "dedup": {"exact": False, "near": False},
    }
    config.update(generator)
    return {
        "name": "vllm-job",
        "modality": "text",
        "rows": rows,
        "shard_rows": rows,
        "seed": 11,
        "output": str(output),
        "generator": config,
        "top_up_rounds": 0,
        "retries": {"shard_retries": 0},
        "resources": {"actors": 1, "num_cpus": 1, "batch_size": 4},
        # the model-based text metrics load models for seconds; tests that check them
        # turn them on
        "metrics": {"enabled": False},
    }


def test_job_is_exact_and_deterministic_by_seed(tmp_path: Path, model: str) -> None:
    first = run_job(job(tmp_path / "a", model, rows=6))
    ds = open_dataset(first["uri"])
    table = ds.to_arrow()
    assert table.num_rows == 6 and ds.manifest.target_met
    shard = ds.manifest.shards[0]
    expected = {i: row_seed(shard.seed, i, 0, 0) & (2**63 - 1) for i in range(6)}
    got = dict(zip(table["prompt_index"].to_pylist(), table["seed"].to_pylist(), strict=True))
    assert got == expected
    assert all(t for t in table["completion"].to_pylist())
    assert set(table["finish_reason"].to_pylist()) <= {"stop", "length"}
    assert all(0 < n <= 12 for n in table["completion_tokens"].to_pylist())
    assert ds.manifest.stats["completion_tokens"] > 0 and ds.manifest.stats["prompt_tokens"] > 0
    assert ds.manifest.generator["backend"] == "vllm"
    assert ds.manifest.fingerprints["vllm_version"] == "0.32.0"
    # the same spec again (elsewhere): the same text, row by row
    second = run_job(job(tmp_path / "b", model, rows=6))
    again = open_dataset(second["uri"]).to_arrow()
    assert again["completion"].to_pylist() == table["completion"].to_pylist()


def test_json_schema_is_guided(tmp_path: Path, model: str) -> None:
    result = run_job(
        job(
            tmp_path / "json",
            model,
            rows=4,
            json_schema=SCHEMA,
            max_retries=0,
            prompt={
                "template": "Describe a person called {{ n }} as JSON.",
                "variables": {"n": ["Ann", "Bo", "Cy", "Di"]},
            },
            sampling={"max_new_tokens": 40},
        )
    )
    ds = open_dataset(result["uri"])
    table = ds.to_arrow()
    assert table.num_rows == 4 and ds.manifest.target_met
    assert ds.manifest.rejected_rows == 0  # guided decoding: nothing to reject
    for text in table["completion"].to_pylist():
        jsonschema.validate(json.loads(text), SCHEMA)
    assert table["json_age"].type == pa.int64()
