"""Several models per text pipeline, without a cluster: which columns get a pool, the
named errors before anything starts, the content hash, placement, and two models run in
one process (a generator used directly loads every model itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from synthfactory.errors import ConfigError, SpecError
from synthfactory.spec import load_spec
from synthfactory.spec.generators.text import LLMConfig
from synthfactory_workers.contract import generator_class
from synthfactory_workers.placement import check_placeable

NODES = [{"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": True, "Resources": {"CPU": 1.0}}]


def job(
    answer_model: str | None = "judge",
    models: dict[str, Any] | None = None,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    answer: dict[str, Any] = {"kind": "llm_text", "name": "answer", "template": "A: {{ q }}"}
    if answer_model is not None:
        answer["model"] = answer_model
    return {
        "name": "models",
        "modality": "text",
        "rows": 2,
        "output": "/tmp/unused-models",
        "generator": {
            "kind": "llm",
            "model": "builtin:smollm2",
            "models": {"judge": {"model": "builtin:smollm2"}} if models is None else models,
            "columns": [
                {"kind": "llm_text", "name": "q", "template": "Ask something."},
                answer,
                {
                    "kind": "llm_judge",
                    "name": "grade",
                    "template": "{{ answer }}",
                    "rubric": ["helpfulness"],
                    "model": "judge",
                },
            ],
        },
        "resources": {"num_cpus": 1, **(resources or {})},
    }


def config(spec: Any) -> LLMConfig:
    generator = spec.generator
    assert isinstance(generator, LLMConfig)
    return generator


def test_columns_on_other_models_get_pools_in_order_of_first_use() -> None:
    c = config(load_spec(job(answer_model="./other")))
    assert c.pool_models == ["./other", "judge"]
    assert c.uses_own_model  # q runs in the shard's actor
    assert c.for_model("judge").model == "builtin:smollm2" and c.for_model("judge").models == {}
    assert c.for_model("./other").model == "./other"
    # the job's own model named again is the job's own model, not a second pool
    same = config(load_spec(job(answer_model="builtin:smollm2", models={"judge": {"model": "x"}})))
    assert same.pool_models == ["judge"]
    only = job()
    only["generator"]["columns"][0]["model"] = "judge"
    assert not config(load_spec(only)).uses_own_model


def test_a_named_model_takes_its_own_engine_settings() -> None:
    c = config(
        load_spec(
            job(
                models={
                    "judge": {
                        "model": "Qwen/Qwen2.5-7B-Instruct",
                        "backend": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
                        "dtype": "bfloat16",
                    }
                }
            )
        )
    )
    judge = c.for_model("judge")
    assert judge.backend.kind == "openai" and judge.dtype == "bfloat16"
    assert c.backend.kind == "transformers" and c.dtype == "auto"


def test_models_belong_to_columns_pipelines() -> None:
    spec = {
        "name": "p",
        "modality": "text",
        "rows": 1,
        "output": "/tmp/unused",
        "generator": {
            "kind": "llm",
            "model": "builtin:smollm2",
            "prompt": {"template": "hi"},
            "models": {"judge": {"model": "x"}},
        },
    }
    with pytest.raises(SpecError, match="models belong to columns pipelines"):
        load_spec(spec)


def preflight(data: dict[str, Any]) -> None:
    spec = load_spec(data)
    generator_class(spec).preflight(spec)


def test_a_model_that_cannot_load_is_named_by_its_field(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ConfigError, match=r"generator\.columns\[answer\]\.model: model folder"):
        preflight(job(answer_model=missing))
    with pytest.raises(ConfigError, match=r"generator\.models\.judge: model folder") as exc:
        preflight(job(models={"judge": {"model": missing}}))
    assert exc.value.fix


def test_resources_for_a_model_no_column_uses_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"resources\.models\.jduge") as exc:
        preflight(job(resources={"models": {"jduge": {"actors": 2}}}))
    assert "judge" in (exc.value.fix or "")
    preflight(job(resources={"models": {"judge": {"actors": 2}}}))


def test_relative_model_paths_resolve_against_the_spec_folder(tmp_path: Path) -> None:
    (tmp_path / "models" / "small").mkdir(parents=True)
    (tmp_path / "models" / "small" / "config.json").write_text("{}")
    data = job(answer_model="./models/small", models={"judge": {"model": "./models/small"}})
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))
    c = config(load_spec(path))
    folder = str((tmp_path / "models" / "small").resolve())
    assert c.pool_models == [folder, "judge"]
    assert c.models["judge"].model == folder


def test_pool_sizes_do_not_change_the_data_but_their_batches_do() -> None:
    base = load_spec(job()).content_hash()
    more = load_spec(job(resources={"models": {"judge": {"actors": 4, "num_cpus": 2}}}))
    assert more.content_hash() == base
    batched = load_spec(job(resources={"models": {"judge": {"batch_size": 8}}}))
    assert batched.content_hash() != base
    # how requests are sent to a named model's server is not what they ask
    served = {"model": "m", "backend": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}}
    a = load_spec(job(models={"judge": served})).content_hash()
    slower = {**served, "backend": {**served["backend"], "max_concurrency": 2}}
    assert load_spec(job(models={"judge": slower})).content_hash() == a
    other = {**served, "model": "m2"}
    assert load_spec(job(models={"judge": other})).content_hash() != a


def test_model_pools_must_fit_beside_one_shard_actor() -> None:
    fits = load_spec(job(resources={"models": {"judge": {"actors": 2}}}))
    assert check_placeable(fits, NODES) == []  # type: ignore[arg-type]
    too_many = load_spec(job(resources={"models": {"judge": {"actors": 3}}}))
    with pytest.raises(ConfigError, match=r"need 4 CPU at once; the cluster has 3"):
        check_placeable(too_many, NODES)  # type: ignore[arg-type]
    too_big = load_spec(job(resources={"models": {"judge": {"num_gpus": 1}}}))
    with pytest.raises(ConfigError, match=r"resources\.models\.judge: no node"):
        check_placeable(too_big, NODES)  # type: ignore[arg-type]


@pytest.mark.slow
def test_two_models_in_one_process_keep_lineage_per_column(tmp_path: Path) -> None:
    """A generator used directly (no pools given) loads every model itself."""
    from synthfactory.storage import LocalStore
    from synthfactory_workers.contract import GeneratorContext, ShardTask

    from .tiny_llm import tiny_llm_folder

    tiny = str(tiny_llm_folder())
    data = job(answer_model=tiny)
    data["generator"]["columns"] = data["generator"]["columns"][:2]
    data["generator"]["models"] = {}
    data["generator"]["sampling"] = {"max_new_tokens": 6}
    data["generator"]["dedup"] = {"exact": False, "near": False}
    spec = load_spec(data)
    cls = generator_class(spec)
    cls.preflight(spec)
    gen = cls(spec, GeneratorContext(artifacts=LocalStore(tmp_path / "artifacts")))
    gen.load()
    assert gen.identity()["column_models"].startswith(f"{tiny}={tiny}@")
    out = gen.generate(ShardTask(0, 0, 2, 5))
    rows = out.table.to_pylist()
    assert len(rows) == 2
    for row in rows:
        assert row["q__model"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct")
        assert row["answer__model"] == tiny and row["q"] in row["answer__prompt"]
    assert out.stats["attempts"] == 4
