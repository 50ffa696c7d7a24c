"""One node vs two nodes of a loopback Ray cluster (each node one CPU), for the same job;
then the time from killing the second node's raylet mid-job to the job's completion and to
its next committed shard.

    .venv/bin/python bench/cluster_scaling.py [--rows 3000000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

import _common  # noqa: F401  (env defaults)

RAY = str(Path(sys.executable).with_name("ray"))
ROOT = Path(__file__).resolve().parents[1]


def start_cluster(nodes: int) -> tuple[str, Path, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    subprocess.run(
        [
            RAY,
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=1",
            "--include-dashboard=false",
            f"--temp-dir={temp}",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    for _ in range(nodes - 1):
        subprocess.run(
            [
                RAY,
                "start",
                f"--address=127.0.0.1:{port}",
                "--node-ip-address=127.0.0.1",
                "--num-cpus=1",
                '--resources={"second": 1}',
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    return f"127.0.0.1:{port}", temp, port


def stop_cluster(temp: Path, port: int) -> None:
    mine = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(temp) in " ".join(p.info["cmdline"] or [])
        or f":{port}" in " ".join(p.info["cmdline"] or [])
    ]
    for p in mine:
        for child in p.children(recursive=True):
            child.kill()
        p.kill()
    psutil.wait_procs(mine, timeout=30)


def write_spec(path: Path, rows: int, actors: int, out: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": "cluster-bench",
                "modality": "tabular",
                "rows": rows,
                "shard_rows": 250_000,
                "output": str(out),
                "metrics": {"enabled": False},
                "generator": {
                    "kind": "gaussian_copula",
                    "source": str(ROOT / "examples/data/penguins.csv"),
                },
                "resources": {"actors": actors, "num_cpus": 0.9, "math_threads": 1},
            }
        )
    )
    return path


def run(address: str, spec: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "synthfactory_flows.cli",
            "run",
            str(spec),
            "-q",
            "--ray-address",
            address,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SYNTHFACTORY_ACTOR_START_TIMEOUT": "20"},
    )


def generate_seconds(out: Path) -> float:
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text())
    return float(manifest["timings"]["generate_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=3_000_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sf-bench-cluster-"))
    results = {}
    for nodes in (1, 2):
        address, temp, port = start_cluster(nodes)
        try:
            out = tmp / f"n{nodes}"
            proc = run(address, write_spec(tmp / f"n{nodes}.yaml", args.rows, nodes, out))
            assert proc.wait() == 0, proc.stdout.read() if proc.stdout else ""
            results[nodes] = generate_seconds(out)
            print(
                f"{nodes} node(s): {results[nodes]:.2f}s, {args.rows / results[nodes]:,.0f} rows/s"
            )
        finally:
            stop_cluster(temp, port)
    print(f"two nodes vs one: {results[1] / results[2]:.2f}x")
    address, temp, port = start_cluster(2)
    try:
        out = tmp / "kill"
        proc = run(address, write_spec(tmp / "kill.yaml", args.rows * 2, 2, out))
        while len(list(out.glob("*/_shards/*.json"))) < 2:
            time.sleep(0.05)
        victim = next(
            p
            for p in psutil.process_iter(["name", "cmdline"])
            if "raylet" in (p.info["name"] or "") and "second" in " ".join(p.info["cmdline"] or [])
        )
        before = len(list(out.glob("*/_shards/*.json")))
        killed = time.time()
        victim.send_signal(signal.SIGKILL)
        while len(list(out.glob("*/_shards/*.json"))) <= before and proc.poll() is None:
            time.sleep(0.05)
        next_shard = time.time() - killed
        assert proc.wait() == 0
        done = time.time() - killed
        print(
            f"node killed: next shard committed {next_shard:.1f}s later, "
            f"job complete {done:.1f}s later"
        )
    finally:
        stop_cluster(temp, port)


if __name__ == "__main__":
    main()
