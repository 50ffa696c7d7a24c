"""Two runs of one spec at once, against a loopback server whose answers vary: one
dataset whose files match its manifest, and no request answered twice."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from synthfactory.dataset import open_dataset
from synthfactory_flows.generate import run_job

from .fault_proxy import STUB_MODEL, FaultProxy, slow

pytestmark = pytest.mark.usefixtures("ray_local", "prefect_server")


@pytest.fixture
def varying() -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream=None, vary=True)
    yield proxy
    proxy.stop()


def spec(output: Path, base_url: str) -> dict[str, Any]:
    return {
        "name": "two-writers",
        "modality": "text",
        "rows": 12,
        "shard_rows": 4,
        "seed": 5,
        "output": str(output),
        "generator": {
            "kind": "llm",
            "model": STUB_MODEL,
            "backend": {"kind": "openai", "base_url": base_url, "max_concurrency": 2},
            "prompt": {"template": "Name one {{ t }}.", "variables": {"t": ["fruit", "tool"]}},
            "dedup": {"exact": False, "near": False},
        },
        "top_up_rounds": 0,
        "resources": {"actors": 1, "num_cpus": 0.5, "batch_size": 4},
        "metrics": {"enabled": False},
    }


def test_two_runs_at_once_make_one_dataset_and_pay_once(
    tmp_path: Path, varying: FaultProxy, readers_agree: Callable[[str], None]
) -> None:
    varying.plan(*[slow(0.15)] * 12)  # long enough for the two runs to overlap
    job = spec(tmp_path / "out", varying.base_url)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        try:
            results.append(run_job(job))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert len(results) == 2 and results[0]["uri"] == results[1]["uri"]
    assert sorted(r["already_complete"] for r in results) == [False, True]
    # every request reached the server once: the second run followed the first
    assert varying.total_forwarded == 12 and set(varying.forwarded.values()) == {1}
    ds = open_dataset(results[0]["uri"])
    assert ds.manifest.rows == 12
    for shard in ds.manifest.shards:
        blob = (Path(ds.uri) / shard.path).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == shard.sha256
    readers_agree(ds.uri)
    assert not (Path(ds.uri) / "_lease.json").exists(), "the lease outlived the run"
