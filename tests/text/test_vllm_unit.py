"""The vllm backend without vLLM: the sampling-parameter mapping, the engine arguments, the
actor options (the separate interpreter, the placement group of a tensor-parallel engine)
and preflight's named errors."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from synthfactory.errors import ConfigError
from synthfactory.spec import load_spec
from synthfactory.spec.backends.vllm import VLLMBackendConfig
from synthfactory.spec.generators.text import LLMConfig, SamplingConfig
from synthfactory_workers import pool
from synthfactory_workers.text import vllm_backend
from synthfactory_workers.text.generator import LLMGenerator
from synthfactory_workers.text.vllm_backend import engine_kwargs, sampling_kwargs


def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text("{}")
    return folder


def spec_for(
    tmp_path: Path,
    backend: dict[str, Any] | None = None,
    resources: dict[str, Any] | None = None,
    **generator: Any,
) -> Any:
    config: dict[str, Any] = {
        "kind": "llm",
        "model": str(model_folder(tmp_path)),
        "backend": {"kind": "vllm", **(backend or {})},
        "prompt": {"template": "Say hi."},
    }
    config.update(generator)
    return load_spec(
        {
            "name": "vllm-unit",
            "modality": "text",
            "rows": 4,
            "output": str(tmp_path / "out"),
            "generator": config,
            "resources": resources or {"actors": 1, "num_cpus": 2, "num_gpus": 1},
        }
    )


# -- sampling ----------------------------------------------------------------------------


def test_sampling_maps_every_setting_with_the_request_seed() -> None:
    s = SamplingConfig(
        temperature=0.7, top_p=0.9, top_k=40, max_new_tokens=12, repetition_penalty=1.2,
        stop=["\n\n"],
    )  # fmt: skip
    assert sampling_kwargs(s, 2**64 - 1) == {
        "n": 1,
        "seed": 2**63 - 1,  # 64-bit row seeds folded into vLLM's signed range
        "max_tokens": 12,
        "repetition_penalty": 1.2,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 40,
        "stop": ["\n\n"],
    }


def test_greedy_is_temperature_zero_and_top_k_zero_is_off() -> None:
    greedy = sampling_kwargs(SamplingConfig(greedy=True, top_k=40), 5)
    assert greedy["temperature"] == 0.0 and greedy["top_k"] == -1 and greedy["top_p"] == 1.0
    assert greedy["seed"] == 5 and "stop" not in greedy
    assert sampling_kwargs(SamplingConfig(top_k=0), 5)["top_k"] == -1


def test_json_schema_becomes_structured_outputs_unless_guided_decoding_is_off() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    kwargs = sampling_kwargs(SamplingConfig(), 1, schema)
    assert kwargs["structured_outputs"] == {"json": schema}
    assert "structured_outputs" not in sampling_kwargs(SamplingConfig(), 1, schema, guided=False)
    assert "structured_outputs" not in sampling_kwargs(SamplingConfig(), 1, None)


# -- engine ------------------------------------------------------------------------------


def test_engine_kwargs(tmp_path: Path) -> None:
    spec = spec_for(
        tmp_path,
        {"max_model_len": 1024, "enforce_eager": True, "max_num_seqs": 64},
        dtype="bfloat16",
    )
    kwargs = engine_kwargs(spec.generator, "cpu")
    assert kwargs == {
        "model": spec.generator.model,
        "dtype": "bfloat16",
        "enforce_eager": True,
        "enable_prefix_caching": True,
        "tensor_parallel_size": 1,
        "seed": 0,
        "max_model_len": 1024,
        "max_num_seqs": 64,
    }
    gpu = engine_kwargs(spec_for(tmp_path, {"dtype": "float16"}).generator, "cuda")
    assert gpu["gpu_memory_utilization"] == 0.9 and gpu["dtype"] == "float16"
    tp = engine_kwargs(spec_for(tmp_path, {"tensor_parallel_size": 4}).generator, "cuda")
    assert tp["tensor_parallel_size"] == 4 and tp["distributed_executor_backend"] == "ray"


def test_engine_device(tmp_path: Path) -> None:
    device = vllm_backend.engine_device
    assert device(spec_for(tmp_path).generator, "cpu") == "cpu"
    assert device(spec_for(tmp_path).generator, "cuda") == "cuda"
    assert device(spec_for(tmp_path, device="cuda").generator, "cpu") == "cuda"
    assert device(spec_for(tmp_path, device="cpu").generator, "cuda") == "cpu"
    # a tensor-parallel actor holds no GPU of its own: its engine still runs on GPUs
    assert device(spec_for(tmp_path, {"tensor_parallel_size": 2}).generator, "cpu") == "cuda"


def test_config_is_registered_and_validated() -> None:
    assert VLLMBackendConfig().kind == "vllm"
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        VLLMBackendConfig(gpu_memory_utilization=1.5)
    for name, field in VLLMBackendConfig.model_fields.items():
        assert field.description, name


# -- actor options ------------------------------------------------------------------------


def test_actors_run_on_the_backend_interpreter(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, {"python": "/opt/vllm/bin/python", "kv_cache_space_gb": 2})
    options = pool.actor_options(spec)
    env = options["runtime_env"]
    assert env["py_executable"] == "/opt/vllm/bin/python"
    assert env["env_vars"]["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert env["env_vars"]["OMP_NUM_THREADS"] == "2"
    assert options["num_gpus"] == 1 and options["num_cpus"] == 2
    assert pool.placement_bundles(spec) is None
    # tasks (prepare, metrics) stay in the driver's environment
    task = pool.task_options(spec)
    assert "py_executable" not in task["runtime_env"] and task["num_gpus"] == 1
    # no python: the actor's own interpreter (a worker image with vLLM)
    assert "py_executable" not in pool.actor_options(spec_for(tmp_path))["runtime_env"]


def test_tensor_parallel_reserves_one_packed_placement_group(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, {"tensor_parallel_size": 4})
    assert pool.placement_bundles(spec) == [
        {"GPU": 1.0, "CPU": 2.0},
        {"GPU": 1.0},
        {"GPU": 1.0},
        {"GPU": 1.0},
    ]
    assert pool.PLACEMENT_STRATEGY == "STRICT_PACK"
    options = pool.actor_options(spec)
    assert options["num_gpus"] == 0  # the engine's Ray workers take the group's GPUs
    assert options["num_cpus"] == 2
    assert pool.task_options(spec)["num_gpus"] == 1


def test_placement_options_capture_the_engine_workers() -> None:
    group = object()  # any placement group: the strategy only carries it
    strategy = pool.placement_options(group)["scheduling_strategy"]
    assert strategy.placement_group is group
    assert strategy.placement_group_bundle_index == 0
    assert strategy.placement_group_capture_child_tasks is True


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_pool_gives_each_actor_its_own_placement_group_and_frees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tensor-parallel path on CPU: CPU bundles stand in for the GPU ones."""
    import ray
    from ray.util import placement_group_table

    class Probe:  # stands in for ShardWorker (defined here: pickled by value)
        def __init__(self, *args: Any) -> None:
            pass

        def setup(self) -> dict[str, Any]:
            group = ray.util.get_current_placement_group()
            return {"group": group.id.hex() if group else None}

    monkeypatch.setattr(pool, "ShardWorker", Probe)
    monkeypatch.setattr(pool, "placement_bundles", lambda spec: [{"CPU": 0.25}, {"CPU": 0.1}])
    spec = spec_for(
        tmp_path, {"tensor_parallel_size": 2}, resources={"actors": 2, "num_cpus": 0.25}
    )
    actors = pool.ActorPool(spec, {}, "", "")
    actors.start()
    groups = {info["group"] for info in actors.info}
    assert len(groups) == 2 and None not in groups
    assert len(actors._groups) == 2
    actors.stop()
    table = placement_group_table()
    assert all(table[g]["state"] == "REMOVED" for g in groups)
    assert not actors._groups


def test_other_backends_are_untouched(tmp_path: Path) -> None:
    spec = spec_for(tmp_path)
    plain = spec.model_copy(
        update={"generator": spec.generator.model_copy(update={"backend": "transformers"})}
    )
    assert pool.backend_actor_options(plain) == {} and pool.placement_bundles(plain) is None


# -- preflight ----------------------------------------------------------------------------


def test_preflight_names_each_bad_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as missing:
        LLMGenerator.preflight(spec_for(tmp_path, {"python": str(tmp_path / "nope/python")}))
    assert "install_vllm.sh" in str(missing.value.fix)
    with pytest.raises(ConfigError, match="absolute path"):
        LLMGenerator.preflight(spec_for(tmp_path, {"python": ".venv-vllm/bin/python"}))
    # an interpreter without vllm (the driver's own)
    with pytest.raises(ConfigError, match=r"cannot run the vllm backend: .*vllm"):
        LLMGenerator.preflight(spec_for(tmp_path, {"python": sys.executable}))
    # one that hangs: named, within the timeout
    hang = tmp_path / "hang"
    hang.write_text("#!/bin/sh\nsleep 30\n")
    hang.chmod(0o755)
    with pytest.raises(ConfigError, match="did not finish in 1 s"):
        LLMGenerator.preflight(
            spec_for(tmp_path, {"python": str(hang), "preflight_timeout_seconds": 1})
        )


def test_preflight_checks_the_ray_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho \'{"vllm": "0.32.0", "ray": "2.0.0"}\'\n')
    fake.chmod(0o755)
    with pytest.raises(ConfigError, match=r"has ray 2\.0\.0") as exc:
        LLMGenerator.preflight(spec_for(tmp_path, {"python": str(fake)}))
    assert f"ray=={importlib.metadata.version('ray')}" in str(exc.value.fix)
    ray = importlib.metadata.version("ray")
    good = tmp_path / "good"
    good.write_text(f'#!/bin/sh\necho \'{{"vllm": "0.32.0", "ray": "{ray}"}}\'\n')
    good.chmod(0o755)
    facts = LLMGenerator.preflight(spec_for(tmp_path, {"python": str(good)}))
    assert facts == {"vllm_version": "0.32.0", "text_engine": "pipeline"}
    # probed once per interpreter (and its mtime) and process
    monkeypatch.setattr(vllm_backend, "probe_environment", lambda *a: pytest.fail("probed"))
    LLMGenerator.preflight(spec_for(tmp_path, {"python": str(good)}))
    os.utime(good, ns=(1, 1))  # changed since: probed again
    with pytest.raises(pytest.fail.Exception, match="probed"):
        LLMGenerator.preflight(spec_for(tmp_path, {"python": str(good)}))


def test_preflight_wants_a_hugging_face_folder(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="not the GGUF") as exc:
        LLMGenerator.preflight(spec_for(tmp_path, model=str(gguf)))
    assert "save_pretrained" in str(exc.value.fix)
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(ConfigError, match=r"no config\.json"):
        LLMGenerator.preflight(spec_for(tmp_path, model=str(bare)))
    # no python: nothing to probe (a prompt spec's engine fact only)
    assert LLMGenerator.preflight(spec_for(tmp_path)) == {"text_engine": "pipeline"}


def test_backend_builds_without_vllm(tmp_path: Path) -> None:
    config = spec_for(tmp_path).generator
    assert isinstance(config, LLMConfig)
    backend = vllm_backend.VLLMBackend(config, "cpu")
    assert backend.model_id == config.model and backend.llm is None
    body = backend.request_body(vllm_backend.Request([{"role": "user", "content": "x"}], 3))
    assert body["seed"] == 3 and body["sampling"]["max_new_tokens"] == 128
