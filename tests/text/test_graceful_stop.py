"""SIGTERM mid-job, then a re-run: no request is answered twice (the loopback server
counts them). A graceful stop sends nothing new and journals the answers in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthfactory.dataset import open_dataset
from synthfactory_flows.generate import run_job

from .fault_proxy import STUB_MODEL, FaultProxy, slow

pytestmark = pytest.mark.usefixtures("ray_local", "prefect_server")

ROWS = 24


@pytest.fixture
def stub() -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream=None)
    yield proxy
    proxy.stop()


def test_sigterm_drains_and_the_rerun_pays_for_nothing_twice(
    tmp_path: Path, stub: FaultProxy
) -> None:
    stub.plan(*[slow(1.5)] * ROWS)  # every answer takes a while: some are in flight
    spec = {
        "name": "graceful",
        "modality": "text",
        "rows": ROWS,
        "shard_rows": 12,
        "seed": 9,
        "output": str(tmp_path / "out"),
        "generator": {
            "kind": "llm",
            "model": STUB_MODEL,
            "backend": {"kind": "openai", "base_url": stub.base_url, "max_concurrency": 4},
            "prompt": {"template": "Name one {{ t }}.", "variables": {"t": ["fruit", "tool"]}},
            "dedup": {"exact": False, "near": False},
        },
        "top_up_rounds": 0,
        "resources": {"actors": 1, "num_cpus": 0.5, "batch_size": 12},
        "metrics": {"enabled": False},
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    cli = Path(sys.executable).with_name("synthfactory")
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [str(cli), "run", str(path), "--quiet"], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 180
        while stub.in_flight < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert stub.in_flight >= 2, (tmp_path / "run.log").read_text()
        sent_before = stub.received
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    output = (tmp_path / "run.log").read_text()
    assert code != 0 and "stopped by a termination signal" in output, output
    assert "Traceback" not in output, output
    answered = stub.total_forwarded
    assert 0 < answered < ROWS, "the stop came too late to test anything"
    # at most the sends racing the stop message (one per concurrency slot) follow it
    assert stub.received - sent_before <= 4, "requests kept being sent after the stop"
    journals = list((tmp_path / "out").rglob("_journal/*/*.jsonl"))
    assert journals, "the answers in flight were not journaled"
    # the re-run sends only what was never answered
    stub.reset_faults()
    result = run_job(spec)
    assert open_dataset(result["uri"]).manifest.rows == ROWS
    assert stub.total_forwarded == ROWS and set(stub.forwarded.values()) == {1}
