"""With no address configured a job starts its own Ray, even when another Ray cluster
(someone's `ray start`) runs on the machine: Ray's own default would join that one."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .ray_cluster import stop_cluster

RAY = str(Path(sys.executable).with_name("ray"))
PROBE = (
    "from synthfactory_workers.ray_runtime import connect\n"
    "import ray\n"
    "connect()\n"
    "print('GCS', ray.get_runtime_context().gcs_address)\n"
    "ray.shutdown()\n"
)


def test_no_address_never_joins_an_unrelated_cluster() -> None:
    temp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))  # AF_UNIX paths must stay short
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_TMPDIR=str(temp), RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    head = subprocess.run(
        [RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    try:
        assert head.returncode == 0, head.stderr
        assert (temp / "ray" / "ray_current_cluster").exists() or any(
            temp.rglob("ray_current_cluster")
        ), "the other cluster is not discoverable: the test would prove nothing"
        probe = subprocess.run(
            [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=180
        )
        assert probe.returncode == 0, probe.stderr[-2000:]
        gcs = [line for line in probe.stdout.splitlines() if line.startswith("GCS ")]
        assert gcs and not gcs[0].endswith(f":{port}"), f"joined the other cluster: {gcs}"
    finally:
        stop_cluster(temp, port)
