"""A real Prefect server and worker on loopback, started by the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import PrefectProcesses


@pytest.fixture(scope="session")
def prefect_env(
    prefect_processes_session: PrefectProcesses, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    home = Path(tmp_path_factory.mktemp("prefect-server"))
    return prefect_processes_session.server(
        home, timeout=120, PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2"
    )


@pytest.fixture(scope="session")
def worker(
    prefect_env: dict[str, str],
    prefect_processes_session: PrefectProcesses,
    tmp_path_factory: pytest.TempPathFactory,
) -> subprocess.Popen[bytes]:
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from synthfactory_flows.deploy import ensure_work_pool; ensure_work_pool()",
        ],
        env=prefect_env,
        check=True,
    )
    log = Path(tmp_path_factory.mktemp("worker")) / "worker.log"
    return prefect_processes_session.worker(prefect_env, log)
