"""The transformers backend's decode loop on a GPU (bf16, the xgrammar mask on CUDA):
rows join a running batch, every completion parses, and the loop's completions equal the
same model's batch-1 completions (greedy, float32)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from synthfactory.spec.generators.text import LLMConfig
from synthfactory_workers.text.backend import Request

pytestmark = [pytest.mark.slow]

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "mood": {"enum": ["calm", "upbeat"]},
        "note": {"type": "string", "maxLength": 30},
    },
    "required": ["mood", "note"],
}


def backend(dtype: str) -> Any:
    from synthfactory_workers.text.transformers_backend import TransformersBackend

    config = LLMConfig.model_validate(
        {
            "model": "builtin:smollm2",
            "prompt": {"template": "x"},
            "device": "cuda",
            "dtype": dtype,
            "json_schema": SCHEMA,
            "sampling": {"max_new_tokens": 32, "greedy": True},
        }
    )
    loaded = TransformersBackend(config)
    loaded.load()
    assert str(loaded.device).startswith("cuda")
    return loaded


def requests() -> list[Request]:
    things = ["kettle", "tent", "lamp", "bike", "pen", "sofa", "jacket"]
    return [
        Request([{"role": "user", "content": f"How does a {t} feel? JSON."}], i)
        for i, t in enumerate(things)
    ]


def test_the_loop_on_cuda_parses_and_matches_batch_one() -> None:
    pytest.importorskip("xgrammar")
    exact = backend("float32")
    together = exact.generate(requests(), 3)
    alone = exact.generate(requests(), 1)
    assert [c.text for c in together] == [c.text for c in alone]
    for completion in together:
        assert json.loads(completion.text)["mood"] in {"calm", "upbeat"}
    half = backend("bfloat16")
    for completion in half.generate(requests(), 4):
        assert json.loads(completion.text)["mood"] in {"calm", "upbeat"}
