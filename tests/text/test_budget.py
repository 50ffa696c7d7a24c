"""A budget that stops: no shard starts once the projected spend passes the budget, so what
the loopback server answered (its own token counts at the spec's prices) stays within 1.02x
the budget; the version is quarantined with reason `budget`, and a re-run with a larger
budget resumes it without paying twice (the server counts the requests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthfactory.dataset import list_versions, open_dataset
from synthfactory.storage import open_store
from synthfactory_flows.budget import BudgetReachedError
from synthfactory_flows.generate import run_job

from .fault_proxy import STUB_MODEL, FaultProxy, stub_answer

pytestmark = pytest.mark.usefixtures("ray_local", "prefect_server")


@pytest.fixture
def stub() -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream=None)
    yield proxy
    proxy.stop()


def served_tokens(stub: FaultProxy) -> int:
    """Prompt + completion tokens of every answer the server gave, as the server counted
    them (``usage``), each answered request once per time it was answered."""
    total = 0
    for key, times in stub.forwarded.items():
        body = json.dumps(stub.bodies[key]).encode()
        usage = json.loads(stub_answer("POST", "/v1/chat/completions", body)[1])["usage"]
        total += times * (usage["prompt_tokens"] + usage["completion_tokens"])
    return total


def spec(output: Path, base_url: str, budget: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "budgeted",
        "modality": "text",
        "rows": 24,
        "shard_rows": 4,
        "seed": 2,
        "output": str(output),
        "generator": {
            "kind": "llm",
            "model": STUB_MODEL,
            "backend": {
                "kind": "openai",
                "base_url": base_url,
                "max_concurrency": 4,
                # a dollar per token: the stub's answers cost 9 tokens, a shard $36
                "price_per_million_tokens": {"prompt": 1e6, "completion": 1e6},
            },
            "prompt": {"template": "Name one {{ t }}.", "variables": {"t": ["fruit"]}},
            "dedup": {"exact": False, "near": False},
        },
        "top_up_rounds": 0,
        "resources": {"actors": 2, "num_cpus": 0.5, "batch_size": 4},
        "metrics": {"enabled": False},
        "budget": budget,
    }


def test_the_budget_stops_the_job_and_a_larger_one_resumes_it(
    tmp_path: Path, stub: FaultProxy
) -> None:
    out = tmp_path / "out"
    with pytest.raises(BudgetReachedError, match="budget") as stopped:
        run_job(spec(out, stub.base_url, {"max_cost_usd": 100}))
    assert stopped.value.fix and "max_cost_usd" in stopped.value.fix
    (version,) = list_versions(open_store(str(out)))
    assert version.status == "quarantined"
    manifest = version.manifest
    assert manifest is not None
    (gate,) = manifest.gates
    assert gate["reason"] == "budget" and not gate["passed"]
    # what was sent, priced at $1 a token: within 1.02x the budget (one shard more than the
    # projection allows would be $108), and every request sent is in a kept row
    paid_usd = served_tokens(stub) * 1.0
    assert 0 < paid_usd <= 1.02 * 100, paid_usd
    assert manifest.stats["cost_usd"] == pytest.approx(paid_usd)
    assert 0 < manifest.rows < 24 and stub.total_forwarded == manifest.rows
    # what the dashboard shows of it: spend and projected total against the budget, over time
    progress = json.loads(open_store(version.uri).get_bytes("_progress.json"))
    assert progress["budget_usd"] == 100 and progress["cost_usd"] == pytest.approx(paid_usd)
    assert max(s.get("projected_cost_usd") or 0 for s in progress["history"]) > 100
    paid = stub.total_forwarded
    # more budget: the same version resumes; nothing answered is asked again
    result = run_job(spec(out, stub.base_url, {"max_cost_usd": 10_000}))
    ds = open_dataset(result["uri"])
    assert ds.manifest.status == "published" and ds.manifest.rows == 24
    assert result["uri"].endswith(version.prefix.rstrip("/").split("/")[-1])
    assert stub.total_forwarded == 24 > paid and set(stub.forwarded.values()) == {1}


def test_a_token_budget(tmp_path: Path, stub: FaultProxy) -> None:
    with pytest.raises(BudgetReachedError, match="max_tokens"):
        run_job(spec(tmp_path / "out", stub.base_url, {"max_tokens": 50}))
    assert 0 < served_tokens(stub) <= 1.02 * 50  # one shard to measure, then nothing fits
