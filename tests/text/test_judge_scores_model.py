"""Judges scored from probabilities on real engines: the shipped SmolLM2 through the
transformers backend (the recorded distribution is the model's own, checked against a
plain forward pass), a whole judge + pairwise pipeline on it, and vLLM (its OpenAI-compatible
server and its in-process engine; skipped without .venv-vllm)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthfactory.spec import load_spec
from synthfactory.spec.columns import LLMJudgeColumn
from synthfactory.spec.generators.text import LLMConfig
from synthfactory.storage import LocalStore
from synthfactory_workers.contract import GeneratorContext, ShardTask
from synthfactory_workers.text.backend import Request
from synthfactory_workers.text.generator import LLMGenerator
from synthfactory_workers.text.rubrics import (
    JUDGE_SYSTEM,
    judge_prompt,
    judge_schema,
    parse_judgement,
    token_at,
    token_text,
    weighted_scores,
)

from .servers import SERVED_NAME, VLLM_PYTHON, smollm2_folder

pytestmark = pytest.mark.slow

COLUMN = LLMJudgeColumn.model_validate(
    {"kind": "llm_judge", "name": "j", "template": "x", "rubric": ["correctness"]}
)
PAIRS = [("What is 2+2?", "4"), ("What is the capital of France?", "Berlin")]


def judge_request(question: str, answer: str, seed: int) -> Request:
    shown = f"Question: {question}\nAnswer: {answer}"
    messages = [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": judge_prompt(COLUMN, shown, None)},
    ]
    return Request(messages, seed, 20)


@pytest.fixture(scope="module")
def backend() -> Iterator[Any]:
    from synthfactory_workers.text.transformers_backend import TransformersBackend

    config = LLMConfig.model_validate(
        {
            "kind": "llm",
            "model": "builtin:smollm2",
            "prompt": {"template": "x"},
            "dtype": "float32",
            "sampling": {"max_new_tokens": 24, "greedy": True},
        }
    )
    loaded = TransformersBackend(config)
    loaded.load()
    loaded.config = loaded.config.model_copy(update={"json_schema": judge_schema(COLUMN)})
    yield loaded


def test_transformers_scores_are_the_models_probabilities_at_the_score(backend: Any) -> None:
    """Greedy judge replies: each token's log-probability is the model's (before the schema
    mask), and the expected score equals the one computed from a plain forward pass over the
    prompt and the reply up to the score."""
    import torch

    requests = [judge_request(q, a, i) for i, (q, a) in enumerate(PAIRS)]
    for request, completion in zip(requests, backend.generate(requests, 2), strict=True):
        logprobs = completion.logprobs
        assert logprobs is not None and len(logprobs) == completion.completion_tokens
        for t in logprobs:  # the schema may force a token the model ranks lower
            assert len(t.top) == 20 and t.logprob <= t.top[0][1] + 1e-6
            assert dict(t.top).get(t.token, t.logprob) == pytest.approx(t.logprob, abs=1e-5)
        scores, why = parse_judgement(COLUMN, completion.text)
        assert scores is not None, why
        found = weighted_scores(COLUMN, scores, logprobs)["correctness"]
        assert found["source"] == "probability"
        text, starts = token_text(logprobs)
        score_at = [m.start(1) for m in re.finditer(r'"score"\s*:\s*(\d)', text)][-1]
        prefix = text[: starts[token_at(starts, score_at)]]
        tokenizer = backend.tokenizer
        reply_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        assert "".join(tokenizer.decode([i]) for i in reply_ids) == prefix
        ids = tokenizer(backend._prompt(request), add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logits = backend.model(torch.tensor([ids + reply_ids])).logits[0, -1]
        probs = torch.softmax(logits.float(), dim=-1)
        digits = {s: float(probs[tokenizer.convert_tokens_to_ids(str(s))]) for s in range(1, 6)}
        mass = sum(digits.values())
        assert found["mass"] == pytest.approx(mass, abs=1e-3)
        expected = sum(s * p for s, p in digits.items()) / mass
        assert found["expected"] == pytest.approx(expected, abs=1e-3)


def pipeline_spec(tmp: Path, **generator: Any) -> Any:
    config: dict[str, Any] = {
        "kind": "llm",
        "model": "builtin:smollm2",
        "sampling": {"max_new_tokens": 40},
        "columns": [
            {"kind": "choice", "name": "q", "choices": ["What is 2+2?"]},
            {"kind": "choice", "name": "good", "choices": ["4"]},
            {"kind": "choice", "name": "bad", "choices": ["7", "banana"]},
            {
                "kind": "llm_judge",
                "name": "judge",
                "template": "Question: {{ q }}\nAnswer: {{ good }}",
                "rubric": ["correctness"],
            },
            {
                "kind": "llm_judge_pairwise",
                "name": "pick",
                "template": "Question: {{ q }}",
                "candidates": ["good", "bad"],
            },
        ],
        "dedup": {"exact": False, "near": False},
    }
    config.update(generator)
    return load_spec(
        {
            "name": "judges",
            "modality": "text",
            "rows": 2,
            "shard_rows": 2,
            "seed": 5,
            "output": str(tmp / "out"),
            "generator": config,
            "resources": {"actors": 1, "batch_size": 4},
        }
    )


def check_probability_rows(rows: list[dict[str, Any]]) -> None:
    assert rows
    for row in rows:
        assert row["judge__correctness__source"] == "probability"
        assert 1.0 <= row["judge.correctness.expected"] <= 5.0
        assert 0.0 < row["judge.correctness.mass"] <= 1.0
        assert row["judge.correctness.std"] >= 0.0
        assert row["pick__source"] == "probability"
        assert 0.0 <= row["pick.prob_a"] <= 1.0
        assert row["pick.winner"] in ("a", "b", "tie")


def test_a_judge_pipeline_on_smollm2_scores_from_probabilities(tmp_path: Path) -> None:
    job = pipeline_spec(tmp_path)
    generator = LLMGenerator(job, GeneratorContext(artifacts=LocalStore(tmp_path / "a")))
    generator.load()
    out = generator.generate(ShardTask(0, 0, 2, 5))
    check_probability_rows(out.table.to_pylist())
    # every request here is a judge's (rubric or pairwise), and every one was constrained
    assert out.stats["attempts"] >= 6  # 2 rows: 2 rubric + 2 x 2 pairwise calls
    assert out.stats["guided_completions"] == out.stats["attempts"]


# -- vLLM --------------------------------------------------------------------------------------

needs_vllm = pytest.mark.skipif(
    not VLLM_PYTHON.exists(),
    reason=f"no vLLM environment at {VLLM_PYTHON.parent.parent}: run bash scripts/install_vllm.sh",
)


@needs_vllm
def test_a_judge_pipeline_against_the_vllm_server_scores_from_probabilities(
    tmp_path: Path, vllm_url: str
) -> None:
    """The openai backend asks the vLLM server for top_logprobs and constrains the judges
    with response_format; it answers both."""
    backend = {"kind": "openai", "base_url": vllm_url}
    job = pipeline_spec(tmp_path, model=SERVED_NAME, backend=backend)
    generator = LLMGenerator(job, GeneratorContext(artifacts=LocalStore(tmp_path / "a")))
    generator.load()
    out = generator.generate(ShardTask(0, 0, 2, 5))
    check_probability_rows(out.table.to_pylist())
    # the server took the judges' schemas as response_format (structured outputs)
    assert out.stats["attempts"] >= 6
    assert "response_format_refused" not in out.stats
    assert "response_format_fallback" not in out.stats


IN_VLLM = """
import json, sys
from synthfactory.spec.generators.text import LLMConfig
from synthfactory_workers.text.backend import Request
from synthfactory_workers.text.vllm_backend import VLLMBackend

def main():
    model, request = sys.argv[1], json.loads(sys.argv[2])
    config = LLMConfig.model_validate({
        "kind": "llm", "model": model, "prompt": {"template": "x"},
        "sampling": {"max_new_tokens": 40},
        "backend": {"kind": "vllm", "max_model_len": 1024, "enforce_eager": True,
                    "kv_cache_space_gb": 1},
    })
    backend = VLLMBackend(config)
    backend.load()
    backend.config = backend.config.model_copy(update={"json_schema": request["schema"]})
    out = backend.generate([Request(request["messages"], 3, 20)], 1)[0]
    tokens = [[t.token, t.logprob, [list(a) for a in t.top]] for t in out.logprobs or ()]
    print("RESULT " + json.dumps({"text": out.text, "logprobs": tokens}))

if __name__ == "__main__":
    main()
"""


@needs_vllm
def test_the_in_process_vllm_engine_returns_logprobs_judges_score_from(tmp_path: Path) -> None:
    """The vllm backend's engine (in .venv-vllm) with SamplingParams(logprobs=20): the judge's
    guided reply is scored from probabilities."""
    from synthfactory_workers.text.logprobs import from_record

    request = judge_request(*PAIRS[0], seed=3)
    payload = json.dumps({"messages": request.messages, "schema": judge_schema(COLUMN)})
    script = tmp_path / "judge_in_vllm.py"
    script.write_text(IN_VLLM)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1"}
    env.pop("PYTHONPATH", None)  # the engine's own environment, not the project's venv
    done = subprocess.run(
        [str(VLLM_PYTHON), str(script), str(smollm2_folder()), payload],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert lines, done.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    logprobs = from_record(result["logprobs"])
    assert logprobs and all(len(t.top) >= 20 for t in logprobs)
    scores, why = parse_judgement(COLUMN, result["text"])
    assert scores is not None, why
    found = weighted_scores(COLUMN, scores, logprobs)["correctness"]
    assert found["source"] == "probability" and 1.0 <= found["expected"] <= 5.0
