"""The LLM generator with the shipped SmolLM2 model on CPU (few tokens, small batches)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from synthfactory.errors import ConfigError, SpecError
from synthfactory.spec import load_spec
from synthfactory.storage import LocalStore
from synthfactory_workers.contract import GeneratorContext, ShardTask
from synthfactory_workers.text.filters import extract_json
from synthfactory_workers.text.generator import LLMGenerator


def text_spec(tmp: Path, **generator: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "llm",
        "model": "builtin:smollm2",
        "system_prompt": "You write very short product reviews.",
        "prompt": {
            "template": "Write a {{ tone }} review of a {{ product }} in one sentence.",
            "variables": {
                "tone": {"choices": {"positive": 0.5, "negative": 0.5}},
                "product": ["mug", "lamp", "bike", "tent"],
            },
        },
        "sampling": {"max_new_tokens": 16},
    }
    base.update(generator)
    return {
        "name": "reviews",
        "modality": "text",
        "rows": 8,
        "shard_rows": 4,
        "seed": 1,
        "output": str(tmp / "out"),
        "generator": base,
        "resources": {"actors": 1, "batch_size": 8},
    }


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMGenerator]:
    tmp = tmp_path_factory.mktemp("llm")
    spec = load_spec(text_spec(tmp))
    generator = LLMGenerator(spec, GeneratorContext(artifacts=LocalStore(tmp / "a")))
    generator.load()
    yield generator


def variant(base: LLMGenerator, tmp: Path, **generator: Any) -> LLMGenerator:
    """The loaded model with another config (no second load)."""
    spec = load_spec(text_spec(tmp, **generator))
    other = LLMGenerator(spec, base.context)
    other.load(reuse=base.loaded_engines())  # this config on the same engine
    return other


def test_same_seed_same_text_other_seed_other_text(loaded: LLMGenerator) -> None:
    a = loaded.generate(ShardTask(0, 0, 4, 7)).table
    b = loaded.generate(ShardTask(0, 0, 4, 7)).table
    c = loaded.generate(ShardTask(0, 0, 4, 8)).table
    assert a["completion"].to_pylist() == b["completion"].to_pylist()
    assert a["completion"].to_pylist() != c["completion"].to_pylist()
    assert a.num_rows == 4
    for column in (
        "prompt",
        "completion",
        "var_tone",
        "var_product",
        "model_id",
        "seed",
        "prompt_tokens",
        "completion_tokens",
        "finish_reason",
        "temperature",
    ):
        assert column in a.column_names
    assert set(a["finish_reason"].to_pylist()) <= {"stop", "length"}
    assert max(a["completion_tokens"].to_pylist()) <= 16
    assert a["model_id"][0].as_py().startswith("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_n_completions_per_prompt(loaded: LLMGenerator, tmp_path: Path) -> None:
    gen = variant(loaded, tmp_path, n=2)
    table = gen.generate(ShardTask(0, 0, 4, 3)).table
    assert table["prompt_index"].to_pylist() == [0, 0, 1, 1]
    assert table["completion_index"].to_pylist() == [0, 1, 0, 1]
    prompts = table["prompt"].to_pylist()
    assert prompts[0] == prompts[1] and prompts[2] == prompts[3]
    loaded.backend.config = loaded.config  # type: ignore[union-attr]


def test_json_schema_retries_and_rejects_with_reasons(loaded: LLMGenerator, tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "required": ["rating"],
        "properties": {"rating": {"type": "integer", "minimum": 1, "maximum": 5}},
    }
    gen = variant(
        loaded,
        tmp_path,
        json_schema=schema,
        max_retries=1,
        max_attempts_per_row=1,
        prompt={
            "template": 'Reply with JSON only, like {"rating": 4}, rating a {{ p }}.',
            "variables": {"p": ["mug", "lamp"]},
        },
        sampling={"max_new_tokens": 12, "temperature": 0.7},
        # the validate-and-retry path: free decoding (constrained decoding has its own tests)
        backend={"kind": "transformers", "guided_decoding": False},
    )
    out = gen.generate(ShardTask(0, 0, 4, 1))
    accepted = out.table.to_pylist()
    rejected = out.rejected.to_pylist() if out.rejected is not None else []
    assert len(accepted) + len(rejected) >= 4
    for row in accepted:
        jsonschema.validate({"rating": row["json_rating"]}, schema)
    for row in rejected:
        assert row["reason"].startswith(("invalid_json", "schema_violation"))
        assert row["json_attempt"] == 1, "rejected only after the retry"
    assert out.stats["attempts"] >= 4
    loaded.backend.config = loaded.config  # type: ignore[union-attr]


def test_filters_reject_with_reasons(loaded: LLMGenerator, tmp_path: Path) -> None:
    gen = variant(loaded, tmp_path, filters={"min_chars": 500}, max_attempts_per_row=1)
    out = gen.generate(ShardTask(0, 0, 3, 2))
    assert out.table.num_rows == 0
    assert out.rejected is not None and out.rejected.num_rows == 3
    assert all(r.startswith("too_short") for r in out.rejected["reason"].to_pylist())
    loaded.backend.config = loaded.config  # type: ignore[union-attr]


def test_extract_json() -> None:
    assert extract_json('Sure! ```json\n{"a": 1}\n``` done') == {"a": 1}
    assert extract_json('x {"a": [1, 2]} y') == {"a": [1, 2]}
    with pytest.raises(ValueError):
        extract_json("no json here")


def test_bad_specs_fail_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="undefined variable"):
        LLMGenerator.preflight(
            load_spec(text_spec(tmp_path, prompt={"template": "Hi {{ nobody }}", "variables": {}}))
        )
    with pytest.raises(ConfigError, match="does not exist"):
        LLMGenerator.preflight(load_spec(text_spec(tmp_path, model=str(tmp_path / "m.gguf"))))
    with pytest.raises(SpecError, match="not a valid JSON Schema"):
        load_spec(text_spec(tmp_path, json_schema={"type": "nonsense"}))
    with pytest.raises(ConfigError, match="does not parse"):
        LLMGenerator.preflight(
            load_spec(text_spec(tmp_path, prompt={"template": "Hi {{ unclosed", "variables": {}}))
        )
