"""A Prefect server backed by PostgreSQL (Debian's, started by the test on a free loopback
port) runs a synthfactory deployment end to end through a worker."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from synthfactory.dataset import list_versions
from synthfactory.storage import open_store

from ..conftest import PrefectProcesses

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = pytest.mark.skipif(
    not PG_BIN and not os.environ.get("CI"), reason="Debian's postgresql is not installed"
)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


@pytest.fixture
def postgres() -> Iterator[str]:
    bin_dir = Path(PG_BIN[-1])
    data = Path(tempfile.mkdtemp(prefix="pg"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = free_port()
    subprocess.run(
        as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        as_postgres(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(data / "log"),
            "-w",
            "start",
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
        ),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-c",
            "create database prefect",
        ],
        check=True,
        capture_output=True,
    )
    yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect"
    subprocess.run(
        as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"),
        capture_output=True,
    )
    shutil.rmtree(data, ignore_errors=True)


RUN_DEPLOYMENT = """
import asyncio, sys
from prefect.client.orchestration import get_client

async def main():
    async with get_client() as client:
        dep = await client.read_deployment_by_name("synthfactory-generate/" + sys.argv[1])
        run = await client.create_flow_run_from_deployment(dep.id)
        for _ in range(600):
            run = await client.read_flow_run(run.id)
            if run.state and run.state.is_final():
                break
            await asyncio.sleep(1)
        print(run.state.type.value)

asyncio.run(main())
"""


def test_deployment_runs_on_a_postgres_backed_server(
    postgres: str, tmp_path: Path, prefect_processes: PrefectProcesses
) -> None:
    env = prefect_processes.server(tmp_path / "home", PREFECT_API_DATABASE_CONNECTION_URL=postgres)
    spec = tmp_path / "pg-job.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "pg-job",
                "modality": "tabular",
                "rows": 500,
                "shard_rows": 250,
                "output": str(tmp_path / "out"),
                "metrics": {"enabled": False},
                "generator": {
                    "kind": "python",
                    "factory": "synthfactory_workers.demo:SequenceGenerator",
                },
                "resources": {"actors": 1, "num_cpus": 0.5},
            }
        )
    )
    made = subprocess.run(
        [sys.executable, "-m", "synthfactory_flows.cli", "deploy", str(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    prefect_processes.worker(env, tmp_path / "worker.log")
    state = subprocess.run(
        [sys.executable, "-c", RUN_DEPLOYMENT, "pg-job"],
        env=env,
        capture_output=True,
        text=True,
        timeout=700,
    )
    assert state.stdout.strip() == "COMPLETED", (
        state.stdout + state.stderr + (tmp_path / "worker.log").read_text()[-3000:]
    )
    (version,) = list_versions(open_store(str(tmp_path / "out")))
    assert version.status == "published" and version.manifest is not None
    assert version.manifest.rows == 500
    pg_port = postgres.rsplit(":", 1)[1].split("/")[0]
    rows = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            pg_port,
            "-U",
            "postgres",
            "-d",
            "prefect",
            "-t",
            "-c",
            "select count(*) from flow_run where state_type = 'COMPLETED'",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(rows.stdout.strip()) >= 1, "the run is recorded in PostgreSQL"
