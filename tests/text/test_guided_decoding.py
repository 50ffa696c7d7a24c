"""Constrained decoding on the transformers backend (xgrammar): the shipped SmolLM2 writes
JSON valid against the schema on the first try, each row keeps its own seed, a grammar is
compiled once per schema, and the spec says when decoding is constrained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from synthfactory.dataset import open_dataset
from synthfactory.errors import ConfigError
from synthfactory.spec import load_spec
from synthfactory.spec.generators.text import LLMConfig
from synthfactory_workers.text.backend import Request

pytest.importorskip("xgrammar")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "summary": {"type": "string", "maxLength": 80},
    },
    "required": ["rating", "summary"],
}
PROMPT = "Review a {{ p }} you bought. Reply with JSON: a rating from 1 to 5 and a summary."


def job(output: str, rows: int, **generator: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "kind": "llm",
        "model": "builtin:smollm2",
        "prompt": {"template": PROMPT, "variables": {"p": ["kettle", "tent", "lamp", "bike"]}},
        "sampling": {"max_new_tokens": 64, "temperature": 0.8},
        "json_schema": SCHEMA,
        "filters": {"min_chars": 0},
        "dedup": {"exact": False, "near": False},
    }
    config.update(generator)
    return {
        "name": "guided",
        "modality": "text",
        "rows": rows,
        "shard_rows": rows,
        "seed": 3,
        "output": output,
        "generator": config,
        "resources": {"actors": 1, "num_cpus": 1, "batch_size": 4},
        "metrics": {"enabled": False},
    }


def config(guided: bool = True, schema: dict[str, Any] | None = None) -> LLMConfig:
    return LLMConfig.model_validate(
        {
            "model": "builtin:smollm2",
            "prompt": {"template": "x"},
            "json_schema": schema or SCHEMA,
            "backend": {"kind": "transformers", "guided_decoding": guided},
            "sampling": {"max_new_tokens": 48, "temperature": 0.8},
        }
    )


def requests(n: int) -> list[Request]:
    return [
        Request([{"role": "user", "content": f"Review product {i}, a kettle, as JSON."}], 70 + i)
        for i in range(n)
    ]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_a_json_schema_job_writes_only_valid_rows_on_the_first_try(tmp_path: Path) -> None:
    from synthfactory_flows.generate import run_job

    result = run_job(job(str(tmp_path / "out"), rows=4))
    ds = open_dataset(result["uri"])
    rows = ds.to_arrow().to_pylist()
    assert len(rows) == 4 and ds.manifest.target_met
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for row in rows:
        value = json.loads(row["completion"])  # the whole completion is the JSON
        assert validator.is_valid(value), row["completion"]
        assert row["json_attempt"] == 0 and row["json_rating"] == value["rating"]
    stats = ds.manifest.stats
    assert stats["attempts"] == 4  # no retries, no rejected rows
    assert stats["guided_completions"] == 4
    assert not stats.get("guided_refused_tokens")


@pytest.mark.slow
def test_the_backend_constrains_keeps_seeds_and_compiles_once() -> None:
    from synthfactory_workers.text.transformers_backend import TransformersBackend

    backend = TransformersBackend(config())
    backend.load()
    first = backend.generate(requests(4), 4)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert all(validator.is_valid(json.loads(c.text)) for c in first), [c.text for c in first]
    assert backend.take_stats() == {"guided_completions": 4.0}
    again = backend.generate(requests(4), 4)  # same seeds, same batch: same texts
    assert [c.text for c in again] == [c.text for c in first]
    assert len({c.text for c in first}) > 1  # each row samples with its own seed
    backend.take_stats()
    assert backend._grammars.compiles == 1  # the second call reused the compiled grammar
    enum = {"type": "object", "properties": {"mood": {"enum": ["calm", "upbeat"]}}}
    enum["required"] = ["mood"]
    backend.config = config(schema=enum)
    moods = backend.generate(requests(2), 2)
    assert {json.loads(c.text)["mood"] for c in moods} <= {"calm", "upbeat"}
    assert backend._grammars.compiles == 2
    bounds = {"type": "integer", "minimum": 5, "maximum": 1}  # valid JSON Schema, no value fits
    impossible = {"type": "object", "properties": {"n": bounds}}
    with pytest.raises(ConfigError, match="guided_decoding: xgrammar cannot"):
        backend._grammars.get(impossible)
    backend.config = config(guided=False)
    backend.generate(requests(1), 1)
    assert backend.take_stats() == {"guided_completions": 2.0}  # the enum call only


def test_guided_decoding_is_on_by_default_and_joins_the_hash(tmp_path: Path) -> None:
    from synthfactory_workers.text.generator import LLMGenerator
    from synthfactory_workers.text.grammar import XGRAMMAR

    spec = load_spec(job(str(tmp_path / "a"), rows=2))
    assert spec.generator.backend.guided_decoding
    assert spec.generator.model_dump(mode="json")["backend"] == "transformers"
    facts = LLMGenerator.preflight(spec)
    assert facts["guided_decoding"] == XGRAMMAR  # other facts (the engine's) may join it
    others = {k: v for k, v in facts.items() if k != "guided_decoding"}
    assert spec.content_hash(facts) != spec.content_hash(others)
    off = load_spec(
        job(str(tmp_path / "b"), rows=2, backend={"kind": "transformers", "guided_decoding": False})
    )
    assert off.generator.model_dump(mode="json")["backend"] == {
        "kind": "transformers",
        "guided_decoding": False,
    }
    assert "guided_decoding" not in LLMGenerator.preflight(off)
    free = job(str(tmp_path / "c"), rows=2)
    del free["generator"]["json_schema"]
    assert "guided_decoding" not in LLMGenerator.preflight(load_spec(free))  # nothing to constrain
