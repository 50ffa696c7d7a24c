"""Shared fixtures: isolated Prefect home, a real local Ray, a real moto S3 server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_HOME = tempfile.mkdtemp(prefix="synthfactory-tests-")
os.environ.setdefault("PREFECT_HOME", str(Path(_HOME) / "prefect"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.5")
os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HOME", str(Path(_HOME) / "hf"))
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("RAY_ADDRESS", None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real moto S3 server over HTTP on 127.0.0.1, with dummy credentials in the env."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {
        k: os.environ.get(k)
        for k in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
        )
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
    )
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on the moto server; returns 's3://name'."""
    import boto3

    name = (
        "t-"
        + request.node.name.lower().replace("_", "-")[:40].strip("-")
        + "-"
        + os.urandom(3).hex()
    )
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return f"s3://{name}"


#: fixtures that start a Ray cluster, a Prefect server or a model server: their tests are slow
SLOW_FIXTURES = {
    "ray_local",
    "prefect_server",
    "prefect_processes",
    "prefect_processes_session",
    "prefect_env",
    "worker",
    "actor_killer",
    "vllm_url",
}
#: folders whose every test needs a cluster, a browser, a GPU or a server process
SLOW_FOLDERS = {"cluster", "operate", "gpu"}
#: modules that load a model (SmolLM2, diffusion, a reference LM) or run the CLI end to end
SLOW_MODULES = {
    "text/test_text_generator.py",
    "image/test_image_generator.py",
    "metrics/test_perplexity.py",
    "tabular/test_neural.py",
    "spine/test_crash_resume.py",
    "spine/test_s3_settings.py",
}
#: single tests of that kind in otherwise quick modules
SLOW_TESTS = {
    "test_quickstart_command",
    "test_counterfactual_with_smollm2",
    "test_penguins_copula_with_a_true_holdout_is_no_closer_than_unseen_rows",
    "test_a_balancing_job_reports_per_class_recall_before_and_after",
    "test_a_memorising_generator_fails_the_privacy_gates",
}
#: parameters that train a neural synthesizer (seconds of torch each)
SLOW_PARAMETERS = ("[ctgan]", "[tvae]")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` means a model, a cluster or a server: ``pytest -m "not slow"`` is the quick
    loop, CI runs everything. Tests are marked by the fixtures and folders they use, or
    explicitly with ``@pytest.mark.slow``."""
    root = Path(__file__).parent
    for item in items:
        folder = Path(str(item.path)).relative_to(root).parts[0]
        fixtures = set(getattr(item, "fixturenames", ()))
        module = Path(str(item.path)).relative_to(root).as_posix()
        name = getattr(item, "originalname", item.name)
        if "vllm_url" in fixtures:  # one vLLM server per worker is minutes of CPU: share it
            item.add_marker(pytest.mark.xdist_group("vllm_server"))
        if (
            folder in SLOW_FOLDERS
            or fixtures & SLOW_FIXTURES
            or module in SLOW_MODULES
            or name in SLOW_TESTS
            or item.name.endswith(SLOW_PARAMETERS)
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One real local Ray instance for the session (ray.init costs seconds)."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One Prefect test server (temporary SQLite) for every flow in the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def find_own_processes(title: str) -> list[Any]:
    """Processes of this test session's own Ray cluster (descendants of this process: a
    local ``ray.init`` starts the raylet, which starts the workers) whose command line
    holds ``title`` (e.g. ``ray::ShardWorker``). Never another job's processes on the same
    machine: a test kills only what it started."""
    import psutil

    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if title in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:  # gone meanwhile
            continue
    return found


@pytest.fixture
def own_processes() -> Callable[[str], list[Any]]:
    """``own_processes(title)``: see ``find_own_processes``."""
    return find_own_processes


@pytest.fixture
def actor_killer() -> Iterator[Callable[[Path], list[int]]]:
    """``start(output)`` kills the first ShardWorker process (SIGKILL, as the OOM killer
    would) once a shard has been committed under ``output``; it returns the list that
    receives the killed pid (only this session's own actors: ``find_own_processes``)."""
    threads: list[threading.Thread] = []

    def start(output: Path) -> list[int]:
        killed: list[int] = []

        def run() -> None:
            deadline = time.time() + 300
            while time.time() < deadline and not killed:
                if list(output.glob("*/_shards/*.json")):
                    for proc in find_own_processes("ray::ShardWorker"):
                        killed.append(proc.pid)
                        proc.kill()
                        return
                time.sleep(0.05)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return killed

    yield start
    for thread in threads:
        thread.join(timeout=5)


class PrefectProcesses:
    """Real Prefect servers and process workers on loopback, stopped together."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def _start(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", *args],
            env=env,
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def server(self, home: Path, timeout: float = 180, **settings: str) -> dict[str, str]:
        """Start ``prefect server`` with ``settings`` (PREFECT_* variables); wait until it
        answers; return the environment that points clients at it."""
        home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "RAY_ADDRESS")}
        env.update(
            PREFECT_HOME=str(home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_WORKER_QUERY_SECONDS="2",
            PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
            **settings,
        )
        args = ["server", "start", "--host", "127.0.0.1", "--port", str(port)]
        server = self._start(args, env, home / "server.log")
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                    return env
            except OSError:
                time.sleep(0.5)
        server.kill()
        pytest.fail("the Prefect server did not start:\n" + (home / "server.log").read_text())

    def worker(self, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """A process worker on the synthfactory pool."""
        args = ["worker", "start", "--pool", "synthfactory", "--type", "process"]
        return self._start(args, env, log)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()


@pytest.fixture
def prefect_processes() -> Iterator[PrefectProcesses]:
    processes = PrefectProcesses()
    yield processes
    processes.stop()


@pytest.fixture(scope="session")
def prefect_processes_session() -> Iterator[PrefectProcesses]:
    processes = PrefectProcesses()
    yield processes
    processes.stop()


def assert_readers_see_the_dataset(uri: str) -> None:
    """Plain readers over ``data/`` (pandas, DuckDB) count exactly the manifest's rows, and
    ``data/`` and ``rejected/`` hold exactly the files the manifest names (a local version)."""
    import duckdb
    import pandas as pd

    from synthfactory.dataset import Manifest

    root = Path(uri)
    manifest = Manifest.model_validate_json((root / "manifest.json").read_text())
    named = {s.path for s in manifest.shards}
    named |= {f.path for s in manifest.shards for f in s.tables.values()}
    named |= {s.rejected_path for s in manifest.shards if s.rejected_path}
    on_disk = {
        str(p.relative_to(root))
        for folder in ("data", "rejected")
        for p in (root / folder).rglob("*.parquet")
    }
    assert on_disk == named, f"stray files: {on_disk - named}; missing: {named - on_disk}"
    tables = manifest.tables or {"": None}
    for name in tables:
        folder = root / "data" / name if name else root / "data"
        expected = manifest.tables[name].rows if name else manifest.rows
        glob = f"{folder}/**/*.parquet" if not name else f"{folder}/*.parquet"
        if expected == 0:
            continue
        assert len(pd.read_parquet(folder)) == expected, f"pandas over {folder}"
        counted = duckdb.sql(f"select count(*) from read_parquet('{glob}')").fetchall()[0][0]
        assert counted == expected, f"duckdb over {folder}"
    rejected = root / "rejected"
    if manifest.rejected_rows and rejected.exists():
        assert len(pd.read_parquet(rejected)) == manifest.rejected_rows


@pytest.fixture
def readers_agree() -> Callable[[str], None]:
    """``readers_agree(version_uri)``: see ``assert_readers_see_the_dataset``."""
    return assert_readers_see_the_dataset
