"""The openai backend through the whole platform against a real vLLM server (SmolLM2 on
CPU), with the fault proxy in between counting what reaches the server."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthfactory.dataset import open_dataset
from synthfactory.errors import ConfigError
from synthfactory.spec import load_spec
from synthfactory_flows.generate import run_job
from synthfactory_workers.text.generator import LLMGenerator
from synthfactory_workers.text.kinds.prompt import row_seed

from .fault_proxy import FaultProxy, drop, status

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_local", "prefect_server")]

KEY_ENV = "SF_OPENAI_TEST_KEY"


@pytest.fixture
def proxy(vllm_url: str) -> Iterator[FaultProxy]:
    p = FaultProxy(upstream=vllm_url)
    yield p
    p.stop()


def job(
    output: Path, base_url: str, rows: int, shard_rows: int, **generator: Any
) -> dict[str, Any]:
    backend = {"kind": "openai", "base_url": base_url, "max_concurrency": 8}
    backend.update(generator.pop("backend", {}))
    config: dict[str, Any] = {
        "kind": "llm",
        "model": "smollm2",
        "backend": backend,
        "prompt": {
            "template": "Name one {{ thing }}.",
            "variables": {"thing": ["fruit", "color", "animal", "tool"]},
        },
        "sampling": {"max_new_tokens": 8},
        "dedup": {"exact": False, "near": False},
    }
    config.update(generator)
    return {
        "name": "openai-job",
        "modality": "text",
        "rows": rows,
        "shard_rows": shard_rows,
        "seed": 4,
        "output": str(output),
        "generator": config,
        "top_up_rounds": 0,
        "retries": {"shard_retries": 0},
        "resources": {"actors": 1, "num_cpus": 0.5, "batch_size": 8},
        # the model-based text metrics load models for seconds; tests that check them
        # turn them on
        "metrics": {"enabled": False},
    }


def assert_exact_rows(uri: str, rows: int) -> Any:
    ds = open_dataset(uri)
    table = ds.to_arrow()
    assert table.num_rows == rows and ds.manifest.target_met
    seeds = {}
    for shard in ds.manifest.shards:
        for i in range(shard.row_start, shard.row_start + shard.rows):
            seeds[i] = row_seed(shard.seed, i, 0, 0) & (2**63 - 1)
    got = dict(zip(table["prompt_index"].to_pylist(), table["seed"].to_pylist(), strict=True))
    assert got == seeds
    assert all(t for t in table["completion"].to_pylist())
    return ds


def test_job_through_faults_sends_each_request_once_and_keeps_the_key_secret(
    tmp_path: Path,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    secret = "sk-leakcheck-" + os.urandom(8).hex()
    monkeypatch.setenv(KEY_ENV, secret)
    caplog.set_level(logging.DEBUG)
    proxy.plan(status(429, "1"), status(500), drop())
    spec = job(
        tmp_path / "out",
        proxy.base_url,
        rows=8,
        shard_rows=4,
        backend={
            "api_key_env": KEY_ENV,
            "price_per_million_tokens": {"prompt": 1, "completion": 3},
        },
    )
    spec["metrics"] = {"enabled": True}  # the card and metrics.json are checked for the key
    result = run_job(spec)
    ds = assert_exact_rows(result["uri"], 8)
    # the server saw every request exactly once, though three were refused or dropped first
    assert proxy.total_forwarded == 8 and set(proxy.forwarded.values()) == {1}
    assert proxy.faults == {"429": 1, "500": 1, "drop": 1}
    stats = ds.manifest.stats
    assert stats["http_429"] == 1 and stats["http_retries"] == 3 and stats["backoff_seconds"] >= 1
    assert stats["prompt_tokens"] > 0 and stats["completion_tokens"] > 0
    expected = (stats["prompt_tokens"] + 3 * stats["completion_tokens"]) / 1e6
    assert stats["cost_usd"] == pytest.approx(expected)
    assert all(b["seed"] and b["max_tokens"] == 8 for b in proxy.bodies.values())
    # the key reached the server as a Bearer token, and nowhere else
    assert proxy.authorizations == {f"Bearer {secret}"}
    out, err = capfd.readouterr()
    assert secret not in out + err + caplog.text
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
    assert not list((tmp_path / "out").rglob("_journal/*/*.jsonl"))  # committed: cleared
    # nor in what the dashboard serves: the catalogue, the dataset view and the runs list
    from fastapi.testclient import TestClient

    from synthfactory_flows.dashboard.app import create_app

    client = TestClient(create_app([str(tmp_path / "out")], token="t"))
    payloads = [
        client.get("/api/datasets"),
        client.get("/api/dataset", params={"uri": result["uri"]}),
        client.get("/api/runs"),
    ]
    assert all(r.status_code == 200 for r in payloads)
    assert result["uri"] in payloads[1].text and "openai" in payloads[1].text
    for response in payloads:
        assert secret not in response.text


def test_a_failed_job_resumes_sending_only_the_unanswered_requests(
    tmp_path: Path, proxy: FaultProxy
) -> None:
    proxy.fail_after(3, drop())  # the server "goes away" after three answers
    spec = job(
        tmp_path / "out",
        proxy.base_url,
        rows=8,
        shard_rows=8,
        backend={"max_retries": 1, "max_error_rate": 0.0, "max_concurrency": 2},
    )
    with pytest.raises(Exception, match="requests failed after their retries"):
        run_job(spec)
    first = proxy.total_forwarded
    assert first == 3
    journaled = list((tmp_path / "out").rglob("_journal/shard-00000/*.jsonl"))
    assert journaled
    proxy.reset_faults()
    result = run_job(spec)
    ds = assert_exact_rows(result["uri"], 8)
    assert proxy.total_forwarded == 8 and set(proxy.forwarded.values()) == {1}
    assert ds.manifest.stats["journal_hits"] == 3


def test_json_schema_is_enforced_by_response_format(tmp_path: Path, proxy: FaultProxy) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "color": {"type": "string"}},
        "required": ["name", "color"],
        "additionalProperties": False,
    }
    spec = job(
        tmp_path / "out",
        proxy.base_url,
        rows=4,
        shard_rows=4,
        prompt={"template": "Describe a {{ thing }} as JSON.", "variables": {"thing": ["fruit"]}},
        sampling={"max_new_tokens": 48},
        json_schema=schema,
        max_retries=0,
    )
    ds = open_dataset(run_job(spec)["uri"])
    table = ds.to_arrow()
    assert table.num_rows == 4
    assert all(isinstance(v, str) for v in table["json_name"].to_pylist())
    assert all(
        b["response_format"]["json_schema"]["schema"] == schema for b in proxy.bodies.values()
    )


def test_preflight_against_the_real_server(tmp_path: Path, vllm_url: str) -> None:
    good = load_spec(job(tmp_path / "out", vllm_url, rows=2, shard_rows=2))
    assert LLMGenerator.preflight(good) == {"text_engine": "pipeline"}  # a prompt spec
    wrong = load_spec(job(tmp_path / "out", vllm_url, rows=2, shard_rows=2, model="gpt-9"))
    with pytest.raises(ConfigError, match="does not serve model 'gpt-9'; it serves: smollm2"):
        LLMGenerator.preflight(wrong)


def test_a_served_model_judges_what_a_local_model_drafts(
    tmp_path: Path,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Two models, two engines: SmolLM2 drafts through transformers in the shard's actor,
    and a named model on the OpenAI-compatible server answers in a pool of its own, with
    its own key and prices."""
    secret = "sk-poolcheck-" + os.urandom(8).hex()
    monkeypatch.setenv(KEY_ENV, secret)
    backend = {
        "kind": "openai",
        "base_url": proxy.base_url,
        "api_key_env": KEY_ENV,
        "max_concurrency": 4,
        "price_per_million_tokens": {"prompt": 1, "completion": 3},
    }
    spec = job(tmp_path / "out", proxy.base_url, rows=4, shard_rows=2)
    spec["generator"] = {
        "kind": "llm",
        "model": "builtin:smollm2",
        "models": {"served": {"model": "smollm2", "backend": backend}},
        "columns": [
            {"kind": "choice", "name": "thing", "choices": ["fruit", "tool"]},
            {"kind": "llm_text", "name": "draft", "template": "Name one {{ thing }}."},
            {
                "kind": "llm_text",
                "name": "answer",
                "template": "Say more about {{ draft }}.",
                "model": "served",
            },
        ],
        "sampling": {"max_new_tokens": 8},
        "dedup": {"exact": False, "near": False},
    }
    spec["resources"]["models"] = {"served": {"actors": 1, "num_cpus": 0.25}}
    result = run_job(spec)
    ds = open_dataset(result["uri"])
    rows = ds.to_arrow().to_pylist()
    assert len(rows) == 4
    for row in rows:
        assert row["draft__model"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct")
        assert row["answer__model"] == "smollm2" and row["draft"] in row["answer__prompt"]
    # only the served column went to the server, each request once, with the pool's key
    assert proxy.total_forwarded == 4 and set(proxy.forwarded.values()) == {1}
    assert proxy.authorizations == {f"Bearer {secret}"}
    # cost: the served column at its prices; the local drafts cost nothing
    served = sum(r["answer__prompt_tokens"] + 3 * r["answer__completion_tokens"] for r in rows)
    assert ds.manifest.stats["cost_usd"] == pytest.approx(served / 1e6)
    assert ds.manifest.stats["prompt_tokens"] > sum(r["answer__prompt_tokens"] for r in rows)
    out, err = capfd.readouterr()
    assert secret not in out + err
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
