"""Every backend constrains a judge's reply to the judge's schema (and a structured column's
to its own, a pairwise judge's to its verdict schema), never a free-text column's: the
pipeline sets the column's schema on the backend, and transformers (xgrammar), vLLM
(structured outputs) and OpenAI-compatible servers (response_format) each turn it into
their form of constrained decoding. No model or server here: the real backends, unloaded,
say what they would send."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synthfactory.spec import load_spec
from synthfactory.spec.columns import LLMJudgeColumn, LLMJudgePairwiseColumn
from synthfactory.spec.generators.text import LLMConfig
from synthfactory.storage import LocalStore
from synthfactory_workers.contract import GeneratorContext, ShardTask
from synthfactory_workers.text.backend import Completion, Request, TextBackend
from synthfactory_workers.text.generator import LLMGenerator
from synthfactory_workers.text.kinds.pairwise import pairwise_schema
from synthfactory_workers.text.openai_backend import OpenAIBackend
from synthfactory_workers.text.pipeline import Pipeline
from synthfactory_workers.text.rubrics import judge_schema
from synthfactory_workers.text.transformers_backend import TransformersBackend
from synthfactory_workers.text.vllm_backend import VLLMBackend

from .builders import ScriptedBackend

STRUCTURED = {
    "type": "object",
    "properties": {"topic": {"type": "string"}},
    "required": ["topic"],
}
COLUMNS: list[dict[str, Any]] = [
    {"kind": "choice", "name": "q", "choices": ["2+2", "3+3"]},
    {"kind": "llm_text", "name": "answer", "template": "Answer {{ q }}"},
    {
        "kind": "llm_structured",
        "name": "meta",
        "template": "Tag {{ q }}",
        "json_schema": STRUCTURED,
    },
    {
        "kind": "llm_judge",
        "name": "judge",
        "template": "Q: {{ q }} A: {{ answer }}",
        "rubric": ["correctness"],
    },
    {"kind": "llm_text", "name": "other", "template": "Other {{ q }}"},
    {
        "kind": "llm_judge_pairwise",
        "name": "pick",
        "template": "Compare answers to {{ q }}",
        "candidates": ["answer", "other"],
    },
]

Probe = Callable[[Any, Request], Any]
"""What a real backend would constrain one request to (None: free decoding)."""

PROBES: dict[str, tuple[dict[str, Any], type[TextBackend], Probe]] = {
    "transformers": ({"kind": "transformers"}, TransformersBackend, lambda b, r: b._schema()),
    "vllm": (
        {"kind": "vllm"},
        VLLMBackend,
        lambda b, r: (b.request_kwargs(r).get("structured_outputs") or {}).get("json"),
    ),
    "openai": (
        {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
        OpenAIBackend,
        lambda b, r: (
            (b.request_body(r).get("response_format") or {}).get("json_schema", {}).get("schema")
        ),
    ),
}


class Probing(ScriptedBackend):
    """Takes the column's config from the pipeline like a real backend, asks the real (unloaded)
    backend what it would constrain each request to, and answers from a script."""

    model_id = "m"
    revision = "r"

    def __init__(self, config: LLMConfig, real: TextBackend, probe: Probe) -> None:
        self.config = config
        self.real = real
        self.probe = probe
        self.constrained: dict[str, Any] = {}

    def reply(self, request: Request) -> Completion:
        self.real.config = self.config  # type: ignore[attr-defined]
        prompt = request.messages[-1]["content"]
        kind = "judge" if "Rate the response" in prompt else prompt.split()[0].lower()
        self.constrained[kind] = self.probe(self.real, request)
        text = {
            "judge": json.dumps({"correctness": {"score": 4, "reason": "ok"}}),
            "tag": json.dumps({"topic": "sums"}),
            "compare": json.dumps({"winner": "A", "reason": "ok"}),
        }.get(kind, "four")
        return Completion(text, 5, 5, "stop")


@pytest.mark.parametrize("kind", sorted(PROBES))
@pytest.mark.parametrize("guided", [True, False])
def test_judges_and_structured_columns_are_constrained_on_every_backend(
    tmp_path: Path, kind: str, guided: bool
) -> None:
    backend, cls, probe = PROBES[kind]
    if kind != "openai":
        backend = {**backend, "guided_decoding": guided}
    elif not guided:
        backend = {**backend, "structured_output": "none"}
    job = load_spec(
        {
            "name": "judged",
            "modality": "text",
            "rows": 2,
            "shard_rows": 2,
            "seed": 1,
            "output": str(tmp_path / "out"),
            "generator": {
                "kind": "llm",
                "model": "builtin:smollm2",
                "backend": backend,
                "columns": COLUMNS,
                "dedup": {"exact": False, "near": False},
            },
        }
    )
    generator = LLMGenerator(job, GeneratorContext(artifacts=LocalStore(tmp_path / "a")))
    config = generator.config
    probing = Probing(config, cls(config, "cpu"), probe)  # type: ignore[call-arg]
    generator.backend = probing
    generator.pipeline = Pipeline(generator, None)
    out = generator.generate(ShardTask(0, 0, 2, 3))
    assert out.table.num_rows == 2
    judge = LLMJudgeColumn.model_validate(COLUMNS[3])
    pick = LLMJudgePairwiseColumn.model_validate(COLUMNS[5])
    expected = {
        "answer": None,
        "other": None,
        "tag": STRUCTURED,
        "judge": judge_schema(judge),
        "compare": pairwise_schema(pick),
    }
    if not guided:
        expected = dict.fromkeys(expected)
    assert probing.constrained == expected
