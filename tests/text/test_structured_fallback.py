"""The openai backend's honest fallback: a server that refuses ``response_format`` (a 400
naming it) gets the schema in the prompt instead; the replies are validated and retried,
and the shard's stats (so the manifest) say how many requests went that way. Against the
fault proxy as a loopback OpenAI-compatible stub server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synthfactory.spec import load_spec
from synthfactory.storage import LocalStore
from synthfactory_workers.contract import GeneratorContext, ShardTask
from synthfactory_workers.text.generator import LLMGenerator
from synthfactory_workers.text.grammar import refuses_response_format, with_schema_note

from .fault_proxy import STUB_MODEL, FaultProxy

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["name", "n"],
}

pytestmark = pytest.mark.usefixtures("fast_backoff")


def generator_for(tmp: Path, base_url: str, rows: int, api: str = "chat") -> LLMGenerator:
    spec = load_spec(
        {
            "name": "t",
            "modality": "text",
            "rows": rows,
            "shard_rows": rows,
            "seed": 3,
            "output": str(tmp / "out"),
            "generator": {
                "kind": "llm",
                "model": STUB_MODEL,
                "backend": {
                    "kind": "openai",
                    "base_url": base_url,
                    "api": api,
                    "structured_output": "response_format",
                },
                "prompt": {"template": "Name one {{ t }}.", "variables": {"t": ["fruit"]}},
                "json_schema": SCHEMA,
                "max_retries": 3,
                "dedup": {"exact": False, "near": False},
            },
            "resources": {"actors": 1, "batch_size": 4},
        }
    )
    context = GeneratorContext(artifacts=LocalStore(tmp / "a"), journal=LocalStore(tmp / "j"))
    generator = LLMGenerator(spec, context)
    generator.load()
    return generator


def test_a_server_that_accepts_response_format_needs_no_fallback(
    tmp_path: Path, stub: FaultProxy
) -> None:
    out = generator_for(tmp_path, stub.base_url, rows=4).generate(ShardTask(0, 0, 4, 7))
    assert out.table.num_rows == 4 and out.stats["attempts"] == 4
    assert "response_format_refused" not in out.stats
    assert "response_format_fallback" not in out.stats


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_a_refused_response_format_falls_back_to_prompt_validate_retry(
    tmp_path: Path, stub: FaultProxy, api: str
) -> None:
    stub.refuse_response_format = True
    generator = generator_for(tmp_path, stub.base_url, rows=8, api=api)
    out = generator.generate(ShardTask(0, 0, 8, 7))
    stats = out.stats
    # the first request (or the few sent at once) was refused, then no request carried it
    assert 1 <= stats["response_format_refused"] == stub.faults["response_format"] <= 8
    assert stats["response_format_fallback"] == stats["attempts"]
    assert stats["attempts"] > 8  # the stub follows the prompt for half the seeds: retries
    assert stats.get("requests_failed", 0) == 0
    rows = out.table.to_pylist()
    assert rows and all(isinstance(r["json_n"], int) for r in rows)
    assert all(json.loads(r["completion"])["name"] == r["json_name"] for r in rows)
    for body in stub.bodies.values():  # what the server answered: the schema in words
        assert "response_format" not in body
        text = body["messages"][-1]["content"] if api == "chat" else body["prompt"]
        assert text.endswith(json.dumps(SCHEMA)) and "Name one fruit." in text
    # later shards of the same actor do not ask again
    refused = stub.faults["response_format"]
    again = generator.generate(ShardTask(1, 8, 4, 8)).stats
    assert stub.faults["response_format"] == refused and "response_format_refused" not in again
    assert again["response_format_fallback"] == again["attempts"]


def test_only_a_4xx_that_names_it_is_a_refusal() -> None:
    assert refuses_response_format(400, '{"error": "response_format is not supported"}')
    assert refuses_response_format(422, "Invalid schema for json_schema 'row'")
    assert not refuses_response_format(400, "max_tokens is too large")
    assert not refuses_response_format(401, "bad key for response_format")
    assert not refuses_response_format(500, "response_format crashed")
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    noted = with_schema_note(messages, SCHEMA)
    assert noted[0] == messages[0] and noted[1]["content"].startswith("u\n\nReply with JSON")
    assert messages[1]["content"] == "u"  # the request's own messages are left as they were
