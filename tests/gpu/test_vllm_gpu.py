"""The vllm backend on GPUs: one engine per actor on one GPU, and a tensor-parallel engine
over the GPUs of one placement group (vLLM's Ray executor inside the actor's group).

Needs CUDA and an environment with the CUDA build of vLLM, ray 2.60.0 and synthfactory
(the gpu-worker image, or `pip install vllm ray==2.60.0 ... && pip install --no-deps -e .`):
SYNTHFACTORY_VLLM_PYTHON names its interpreter; unset, the actors use their own (the
driver's) interpreter, which then must have vLLM."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from synthfactory.dataset import open_dataset
from synthfactory_flows.generate import run_job

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_gpu() -> Any:
    import ray

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def model() -> str:
    given = os.environ.get("SYNTHFACTORY_VLLM_TEST_MODEL")
    if given:
        return given
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "text" / "servers.py"
    spec = importlib.util.spec_from_file_location("_sf_text_servers", path)
    assert spec is not None and spec.loader is not None
    servers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(servers)
    return str(servers.smollm2_folder())


def job(output: Path, model: str, tp: int, rows: int = 32) -> dict[str, Any]:
    backend: dict[str, Any] = {
        "kind": "vllm",
        "tensor_parallel_size": tp,
        "gpu_memory_utilization": 0.3,
        "max_model_len": 1024,
        "enforce_eager": True,
    }
    python = os.environ.get("SYNTHFACTORY_VLLM_PYTHON")
    if python:
        backend["python"] = python
    return {
        "name": f"vllm-gpu-tp{tp}",
        "modality": "text",
        "rows": rows,
        "shard_rows": rows,
        "seed": 3,
        "output": str(output),
        "generator": {
            "kind": "llm",
            "model": model,
            "backend": backend,
            "device": "cuda",
            "prompt": {"template": "Write one sentence about {{ t }}.",
                       "variables": {"t": ["rain", "bread", "trains", "owls"]}},
            "sampling": {"max_new_tokens": 32},
            "dedup": {"exact": False, "near": False},
        },
        "top_up_rounds": 0,
        "resources": {"actors": 1, "num_cpus": 1, "num_gpus": 1},
    }  # fmt: skip


def test_one_engine_on_one_gpu(tmp_path: Path, model: str, ray_gpu: Any) -> None:
    result = run_job(job(tmp_path / "tp1", model, tp=1))
    ds = open_dataset(result["uri"])
    assert ds.to_arrow().num_rows == 32 and ds.manifest.target_met
    again = open_dataset(run_job(job(tmp_path / "tp1b", model, tp=1))["uri"]).to_arrow()
    assert again["completion"].to_pylist() == ds.to_arrow()["completion"].to_pylist()


def test_tensor_parallel_engine_in_one_placement_group(
    tmp_path: Path, model: str, ray_gpu: Any
) -> None:
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("tensor parallelism needs 2 GPUs")
    result = run_job(job(tmp_path / "tp2", model, tp=2))
    ds = open_dataset(result["uri"])
    assert ds.to_arrow().num_rows == 32 and ds.manifest.target_met
    # the pool released the group (and its GPUs) when the job ended
    from ray.util import placement_group_table

    assert all(g["state"] == "REMOVED" for g in placement_group_table().values())
