"""`synthfactory serve`: a Prefect server (unless one is configured), a worker for the
synthfactory work pool, and the dashboard; stopping it stops what it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from synthfactory.errors import ConfigError


def wait_healthy(
    url: str, timeout: float = 120.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ConfigError(f"{proc.args!r} exited with {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise ConfigError(f"{url} did not answer within {timeout:.0f}s")


@dataclass
class Services:
    """Child processes started by serve, stopped in reverse order."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def start_prefect_server(
    services: Services, env: dict[str, str], host: str, port: int, logs: Path
) -> str:
    api = f"http://{host}:{port}/api"
    proc = services.start(
        [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
        env,
        logs / "prefect-server.log",
    )
    wait_healthy(f"{api}/health", proc=proc)
    return api


def start_worker(
    services: Services, env: dict[str, str], pool: str, logs: Path, limit: int | None = None
) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
    if limit:
        args += ["--limit", str(limit)]
    return services.start(args, env, logs / "prefect-worker.log")


def start_backend(
    services: Services,
    env: dict[str, str],
    *,
    prefect_port: int,
    logs: Path,
    worker: bool,
    worker_limit: int | None,
    echo: Callable[[str], None],
) -> None:
    """What the dashboard drives: a Prefect server on loopback unless ``env`` names one
    (its API URL then goes into ``env`` and this process's environment), and a worker for
    the synthfactory work pool when ``worker``. ``echo`` says what started, as it starts."""
    if not env.get("PREFECT_API_URL"):
        api = start_prefect_server(services, env, "127.0.0.1", prefect_port, logs)
        env["PREFECT_API_URL"] = os.environ["PREFECT_API_URL"] = api
        echo(f"Prefect UI:   {api.removesuffix('/api')}")
    else:
        echo(f"Prefect API:  {env['PREFECT_API_URL']} (existing server)")
    if worker:
        from synthfactory_flows.deploy import WORK_POOL, ensure_work_pool

        ensure_work_pool(WORK_POOL)
        start_worker(services, env, WORK_POOL, logs, worker_limit)
        echo(f"worker:       serving work pool '{WORK_POOL}' (logs in {logs})")
