"""The openai backend without a model: AIMD, Retry-After, retries, failures, the journal and
preflight, against the fault proxy acting as a tiny OpenAI-compatible stub server."""

from __future__ import annotations

import contextlib
import email.utils
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from synthfactory.errors import ConfigError
from synthfactory.spec import load_spec
from synthfactory.spec.generators.text import LLMConfig
from synthfactory.storage import LocalStore
from synthfactory_workers.contract import GeneratorContext, ShardTask
from synthfactory_workers.text.generator import LLMGenerator
from synthfactory_workers.text.kinds.prompt import row_seed
from synthfactory_workers.text.openai_backend import (
    AIMD,
    RequestsFailedError,
    parse_retry_after,
)

from .fault_proxy import STUB_MODEL, FaultProxy, drop, slow, status

pytestmark = pytest.mark.usefixtures("fast_backoff")


def spec_for(tmp: Path, base_url: str, rows: int = 8, **backend: Any) -> Any:
    extra = backend.pop("generator", {})
    generator: dict[str, Any] = {
        "kind": "llm",
        "model": STUB_MODEL,
        "backend": {"kind": "openai", "base_url": base_url, **backend},
        "prompt": {"template": "Name one {{ thing }}.", "variables": {"thing": ["fruit"]}},
        "dedup": {"exact": False, "near": False},
    }
    generator.update(extra)
    return load_spec(
        {
            "name": "t",
            "modality": "text",
            "rows": rows,
            "shard_rows": rows,
            "seed": 3,
            "output": str(tmp / "out"),
            "generator": generator,
            "resources": {"actors": 1, "batch_size": 4},
        }
    )


def loaded(tmp: Path, spec: Any) -> LLMGenerator:
    context = GeneratorContext(artifacts=LocalStore(tmp / "a"), journal=LocalStore(tmp / "j"))
    generator = LLMGenerator(spec, context)
    generator.load()
    return generator


# -- pure parts ----------------------------------------------------------------------------


def test_retry_after_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-4") == 0.0
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= (parse_retry_after(date, now=now) or 0) <= 31
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_aimd_halves_once_per_window_and_climbs_back() -> None:
    aimd = AIMD(16)
    epoch = aimd.epoch
    assert aimd.on_overload(epoch, None, 0.0) and aimd.limit == 8
    # the other requests in flight in the same window do not halve it again
    assert not aimd.on_overload(epoch, None, 0.0) and aimd.limit == 8
    assert aimd.on_overload(aimd.epoch, 2.0, 10.0) and aimd.limit == 4
    assert aimd.resume_at == 12.0
    for _ in range(10):
        aimd.on_overload(aimd.epoch, None, 0.0)
    assert aimd.limit == 1
    for _ in range(1 + 2 + 3):  # +1 per window of `limit` successes
        aimd.on_success()
    assert aimd.limit == 4
    for _ in range(1000):
        aimd.on_success()
    assert aimd.limit == 16


def test_old_plain_backend_string_keeps_its_dump_and_hash() -> None:
    base = {"kind": "llm", "model": "m", "prompt": {"template": "x"}}
    old = LLMConfig.model_validate({**base, "backend": "transformers"})
    assert old.model_dump(mode="json")["backend"] == "transformers"
    assert old == LLMConfig.model_validate(base)
    new = LLMConfig.model_validate(
        {**base, "backend": {"kind": "openai", "base_url": "http://h/v1", "model": "served"}}
    )
    assert new.served_model == "served"
    assert LLMConfig.model_validate(new.model_dump(mode="json")) == new
    with pytest.raises(ValueError, match="base_url"):
        LLMConfig.model_validate({**base, "backend": "openai"})
    with pytest.raises(ValueError):
        LLMConfig.model_validate(
            {**base, "backend": {"kind": "openai", "base_url": "http://h", "api_key": "sk-x"}}
        )


# -- against the stub ----------------------------------------------------------------------


def test_concurrent_requests_seeds_and_sampling(tmp_path: Path, stub: FaultProxy) -> None:
    stub.plan(slow(0.3), slow(0.3), slow(0.3), slow(0.3))
    spec = spec_for(tmp_path, stub.base_url, rows=12, max_concurrency=6)
    out = loaded(tmp_path, spec).generate(ShardTask(0, 0, 12, 99))
    rows = out.table.to_pylist()
    assert len(rows) == 12
    assert [r["seed"] for r in rows] == [row_seed(99, i, 0, 0) & (2**63 - 1) for i in range(12)]
    assert all(r["completion"].startswith("Answer ") for r in rows)
    assert 1 < stub.max_in_flight <= 6
    body = next(iter(stub.bodies.values()))
    assert body["top_k"] == 50 and body["max_tokens"] == 128 and "seed" in body
    assert out.stats["http_requests"] == 12 and out.stats["prompt_tokens"] > 0


def test_429_with_retry_after_is_waited_out(tmp_path: Path, stub: FaultProxy) -> None:
    stub.plan(status(429, "1"))
    spec = spec_for(tmp_path, stub.base_url, rows=4, max_concurrency=4)
    generator = loaded(tmp_path, spec)
    started = time.perf_counter()
    out = generator.generate(ShardTask(0, 0, 4, 1))
    assert time.perf_counter() - started >= 1.0
    assert out.table.num_rows == 4
    assert out.stats["http_429"] == 1 and out.stats["http_retries"] == 1
    assert out.stats["concurrency_decreases"] == 1 and out.stats["backoff_seconds"] >= 1.0
    assert generator.backend is not None and generator.backend.aimd.limit < 4  # type: ignore[attr-defined]
    assert set(stub.forwarded.values()) == {1}


def test_5xx_drops_and_timeouts_are_retried(tmp_path: Path, stub: FaultProxy) -> None:
    stub.plan(status(500), drop(), status(502), slow(2.0))
    spec = spec_for(tmp_path, stub.base_url, rows=6, max_concurrency=1, request_timeout_seconds=0.5)
    out = loaded(tmp_path, spec).generate(ShardTask(0, 0, 6, 5))
    assert out.table.num_rows == 6 and out.rejected is None
    assert out.stats["http_5xx"] == 2 and out.stats["http_connection_errors"] == 1
    assert out.stats["http_timeouts"] == 1 and out.stats["http_retries"] == 4


def test_a_request_that_keeps_failing_is_a_rejected_row(tmp_path: Path, stub: FaultProxy) -> None:
    stub.plan(status(500), status(500))
    spec = spec_for(
        tmp_path, stub.base_url, rows=20, max_concurrency=1, max_retries=0, max_error_rate=0.2
    )
    out = loaded(tmp_path, spec).generate(ShardTask(0, 0, 20, 5))
    assert out.table.num_rows == 20  # the pipeline asked for more rows (2 / keep rate 0.9)
    assert out.rejected is not None
    reasons = out.rejected["reason"].to_pylist()
    assert len(reasons) == 2 and all(r.startswith("request_failed: http 500") for r in reasons)
    assert out.rejected["rejected_column"].to_pylist() == ["completion", "completion"]
    assert out.stats["requests_failed"] == 2 and out.stats["attempts"] == 23
    assert out.stats["pipeline.generated"] == 23 and out.stats["pipeline.surplus"] == 1


def test_error_rate_fails_the_shard_and_the_retry_sends_only_the_rest(
    tmp_path: Path, stub: FaultProxy
) -> None:
    stub.fail_after(5, drop())
    spec = spec_for(tmp_path, stub.base_url, rows=16, max_concurrency=2, max_retries=1)
    generator = loaded(tmp_path, spec)
    with pytest.raises(RequestsFailedError, match="requests failed after their retries"):
        generator.generate(ShardTask(2, 0, 16, 7))
    assert stub.total_forwarded == 5
    stub.reset_faults()
    out = loaded(tmp_path, spec).generate(ShardTask(2, 0, 16, 7))  # a fresh actor
    assert out.table.num_rows == 16
    assert out.stats["journal_hits"] == 5
    assert stub.total_forwarded == 16 and set(stub.forwarded.values()) == {1}


def test_api_key_goes_in_the_header_only(
    tmp_path: Path, stub: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_TEST_KEY", "sk-unit-7c1d2e")
    spec = spec_for(tmp_path, stub.base_url, rows=2, api_key_env="SF_TEST_KEY")
    out = loaded(tmp_path, spec).generate(ShardTask(0, 0, 2, 7))
    assert stub.authorizations == {"Bearer sk-unit-7c1d2e"}
    assert "sk-unit-7c1d2e" not in str(out.table.to_pylist()) + str(out.stats)
    for path in (tmp_path / "j").rglob("*"):
        if path.is_file():
            assert "sk-unit-7c1d2e" not in path.read_text()


def test_response_format_is_sent_for_a_schema(tmp_path: Path, stub: FaultProxy) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["name", "n"],
    }
    spec = spec_for(tmp_path, stub.base_url, rows=3, generator={"json_schema": schema})
    out = loaded(tmp_path, spec).generate(ShardTask(0, 0, 3, 7))
    assert out.table["json_n"].type.bit_width == 64 and out.table.num_rows == 3
    body = next(iter(stub.bodies.values()))
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True


def test_the_completions_api_asks_for_the_schema_in_the_prompt(
    tmp_path: Path, stub: FaultProxy
) -> None:
    """The completions API has no response_format: under ``auto`` the schema is asked for
    in words (validated + retried), the stats say so, and the spec's hash carries it."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    spec = spec_for(
        tmp_path, stub.base_url, rows=2, api="completions", generator={"json_schema": schema}
    )
    out = loaded(tmp_path, spec).generate(ShardTask(0, 0, 2, 7))
    for body in stub.bodies.values():
        assert "response_format" not in body
        assert "valid against this JSON Schema" in body["prompt"] and '"n"' in body["prompt"]
    assert out.stats["response_format_fallback"] == out.stats["http_requests"] >= 2
    assert LLMGenerator.preflight(spec)["schema_in_prompt"] == "completions"
    chat = spec_for(tmp_path, stub.base_url, rows=2, generator={"json_schema": schema})
    assert "schema_in_prompt" not in LLMGenerator.preflight(chat)


# -- preflight -----------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_preflight_names_each_bad_input(
    tmp_path: Path, stub: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="cannot reach"):
        LLMGenerator.preflight(spec_for(tmp_path, f"http://127.0.0.1:{closed_port()}/v1"))
    # a black hole: a listener whose backlog is full drops the SYN, so connect() hangs
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(hole.getsockname())
        fillers.append(filler)
    started = time.perf_counter()
    url = f"http://127.0.0.1:{hole.getsockname()[1]}/v1"
    with pytest.raises(ConfigError, match="did not answer within 1 s"):
        LLMGenerator.preflight(spec_for(tmp_path, url, connect_timeout_seconds=1))
    assert time.perf_counter() - started < 5
    for sock in [hole, *fillers]:
        sock.close()
    with pytest.raises(ConfigError, match="answered HTTP 404"):  # not the API root
        LLMGenerator.preflight(spec_for(tmp_path, stub.base_url.removesuffix("/v1") + "/x"))
    wrong = spec_for(tmp_path, stub.base_url, generator={"model": "no-such-model"})
    with pytest.raises(ConfigError, match=f"does not serve model 'no-such-model'.*{STUB_MODEL}"):
        LLMGenerator.preflight(wrong)
    monkeypatch.delenv("SF_MISSING_KEY", raising=False)
    with pytest.raises(ConfigError, match="SF_MISSING_KEY is not set"):
        LLMGenerator.preflight(spec_for(tmp_path, stub.base_url, api_key_env="SF_MISSING_KEY"))
    # a prompt spec's rows come from the pipeline engine (not the old prompt loop's rows)
    assert LLMGenerator.preflight(spec_for(tmp_path, stub.base_url)) == {"text_engine": "pipeline"}
    assert "SF_MISSING_KEY" not in os.environ
