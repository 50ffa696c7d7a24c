"""A real Prefect server and worker on loopback, started by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def prefect_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "RAY_ADDRESS")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
        PREFECT_WORKER_QUERY_SECONDS="2",
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
    )
    log = open(home / "server.log", "wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("the Prefect server did not start:\n" + (home / "server.log").read_text())
    yield env
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="session")
def worker(
    prefect_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from synthfactory_flows.deploy import ensure_work_pool; ensure_work_pool()",
        ],
        env=prefect_env,
        check=True,
    )
    log = open(Path(tmp_path_factory.mktemp("worker")) / "worker.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "worker",
            "start",
            "--pool",
            "synthfactory",
            "--type",
            "process",
        ],
        env=prefect_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield proc
    proc.terminate()
    proc.wait(timeout=30)
