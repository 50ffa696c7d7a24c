"""`synthfactory run` end to end: a user error raised inside a Prefect task is one line with
its fix (no traceback), and a driver killed with SIGKILL takes its ephemeral Prefect server
with it. Each test kills only processes it started (the driver and its descendants)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

pytestmark = pytest.mark.slow

SERVER_APP = "prefect.server.api.server:create_app"
FACTORY = "synthfactory_workers.demo:SequenceGenerator"


def spec_file(tmp_path: Path, **fields: object) -> Path:
    spec = {
        "name": "tiny",
        "modality": "tabular",
        "generator": {"kind": "python", "factory": FACTORY},
        "rows": 20,
        "output": str(tmp_path / "out"),
        **fields,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def env() -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "RAY_ADDRESS")}
    values.update(
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return values


@pytest.fixture
def started() -> Iterator[list[psutil.Process]]:
    """Processes this test started (and their descendants, once seen): any still running
    at the end are killed, and nothing else is."""
    mine: list[psutil.Process] = []
    yield mine
    for proc in mine:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                proc.kill()
        except psutil.Error:
            pass


def test_a_user_error_inside_a_task_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    path = spec_file(tmp_path, resources={"custom_resources": {"no_such_node_kind": 1}})
    result = subprocess.run(
        [sys.executable, "-m", "synthfactory_flows.cli", "run", "-q", str(path)],
        capture_output=True,
        text=True,
        env=env(),
        timeout=300,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "error: no node of the Ray cluster can hold one actor" in out, out
    assert "fix: " in out
    assert "Traceback" not in out and "Encountered exception" not in out, out


def test_a_killed_driver_takes_its_ephemeral_server_with_it(
    tmp_path: Path, started: list[psutil.Process]
) -> None:
    # the server starts before the flow does anything: the driver is killed as soon as it is up
    path = spec_file(tmp_path, rows=1000, shard_rows=100)
    driver = subprocess.Popen(
        [sys.executable, "-m", "synthfactory_flows.cli", "run", "-q", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(),
    )
    parent = psutil.Process(driver.pid)
    started.append(parent)
    server: psutil.Process | None = None
    deadline = time.monotonic() + 240
    while server is None and time.monotonic() < deadline and driver.poll() is None:
        for child in parent.children(recursive=True):
            try:
                if SERVER_APP in " ".join(child.cmdline()):
                    server = child
            except psutil.Error:
                pass
        time.sleep(0.1)
    assert server is not None, "the driver started no ephemeral Prefect server"
    started.extend(parent.children(recursive=True))
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if not server.is_running() or server.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the ephemeral server {server.pid} outlived its killed driver by 10 s")
