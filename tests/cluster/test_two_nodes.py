"""A real two-node Ray cluster on loopback (`ray start --head` + a second `ray start`
process with its own resources): actors spread over both nodes, a custom resource pins a
pool to one node, and a node killed mid-job does not cost the job a row."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from synthfactory.dataset import open_dataset

from .ray_cluster import stop_cluster

RAY = str(Path(sys.executable).with_name("ray"))
SEQ = "synthfactory_workers.demo:SequenceGenerator"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS",)}
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    port = free_port()
    client_port = free_port()
    address = f"127.0.0.1:{port}"
    import tempfile

    temp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))  # AF_UNIX paths must stay short
    head = subprocess.run(
        [
            RAY,
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert head.returncode == 0, head.stderr
    worker = subprocess.run(
        [
            RAY,
            "start",
            f"--address={address}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            '--resources={"gpu_like": 1}',
            "--disable-usage-stats",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert worker.returncode == 0, worker.stderr
    run_env = {
        **env,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "SYNTHFACTORY_ACTOR_START_TIMEOUT": "60",
    }
    run_env.pop("PREFECT_API_URL", None)
    yield {"address": address, "client": f"ray://127.0.0.1:{client_port}", "env": run_env}
    stop_cluster(temp, port)


def raylets(address: str) -> list[psutil.Process]:
    """This cluster's second node's raylet: the one started with the gpu_like resource and
    this cluster's GCS port, as a whole number (another test's cluster may run beside it)."""
    return [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if "raylet" in (p.info["name"] or "")
        and "gpu_like" in " ".join(p.info["cmdline"] or [])
        and re.search(rf":{address.rsplit(':', 1)[1]}(?!\d)", " ".join(p.info["cmdline"] or []))
    ]


def spec(path: Path, output: Path, **extra: Any) -> Path:
    data: dict[str, Any] = {
        "name": path.stem,
        "modality": "tabular",
        "rows": 4000,
        "shard_rows": 250,
        "output": str(output),
        "seed": 3,
        "generator": {
            "kind": "python",
            "factory": SEQ,
            "options": {"sleep_seconds": extra.pop("sleep", 0.3)},
        },
        "resources": {"actors": 2, "num_cpus": 1},
    }
    data["resources"].update(extra)
    path.write_text(yaml.safe_dump(data))
    return path


def run(cluster: dict[str, Any], spec_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "synthfactory_flows.cli",
            "run",
            str(spec_path),
            "-q",
            "--ray-address",
            cluster["address"],
        ],
        env=cluster["env"],
        capture_output=True,
        text=True,
        timeout=900,
    )


def nodes_used(output: Path) -> set[str]:
    return {s.worker.rsplit(":", 1)[-1] for s in open_dataset(str(output)).manifest.shards}


def test_actors_spread_and_custom_resources_pin(cluster: dict[str, Any], tmp_path: Path) -> None:
    spread = run(cluster, spec(tmp_path / "spread.yaml", tmp_path / "a", num_cpus=1.5))
    assert spread.returncode == 0, spread.stdout + spread.stderr
    assert len(nodes_used(tmp_path / "a")) == 2, "two 1.5-CPU actors need both 2-CPU nodes"
    pinned = run(
        cluster,
        spec(
            tmp_path / "pinned.yaml",
            tmp_path / "b",
            num_cpus=0.5,
            custom_resources={"gpu_like": 0.5},
        ),
    )
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    used = nodes_used(tmp_path / "b")
    assert len(used) == 1
    import ray

    ray.init(address=cluster["address"], log_to_driver=False)
    try:
        gpu_like = [
            n["NodeID"][:12] for n in ray.nodes() if n["Alive"] and n["Resources"].get("gpu_like")
        ]
    finally:
        ray.shutdown()
    assert used == set(gpu_like)


def test_job_survives_losing_a_node(cluster: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "synthfactory_flows.cli",
            "run",
            str(spec(tmp_path / "job.yaml", out, num_cpus=1.5, sleep=0.5)),
            "-q",
            "--ray-address",
            cluster["address"],
        ],
        env=cluster["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.glob("*/_shards/*.json"))) < 3:
        time.sleep(0.2)
    victims = raylets(cluster["address"])
    assert len(victims) == 1, [p.info["cmdline"] for p in victims]
    killed_at = time.time()
    victims[0].send_signal(signal.SIGKILL)
    output, _ = proc.communicate(timeout=900)
    recovered = time.time() - killed_at
    assert proc.returncode == 0, output
    ds = open_dataset(str(out))
    assert ds.manifest.rows == 4000
    assert ds.to_arrow()["id"].to_pylist() == list(range(4000))
    print(f"job finished {recovered:.1f}s after the node was killed")
