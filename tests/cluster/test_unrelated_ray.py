"""The suite is safe beside someone else's Ray job on the same machine: an unrelated
`ray start --head` cluster runs detached actors named like ours (``ShardWorker``,
``ModelWorker``, so a test that looked processes up by name would find them first); this
test runs a real job of its own whose actor it SIGKILLs the way the suite's tests do
(``actor_killer``), starts and stops a `ray start` cluster of its own the way the cluster
tests do (``stop_cluster``), and then the unrelated cluster still has every process it had,
and its actors still answer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from synthfactory.dataset import open_dataset
from synthfactory_flows.generate import run_job

from ..spine.helpers import sequence_spec
from .ray_cluster import stop_cluster

RAY = str(Path(sys.executable).with_name("ray"))

#: the unrelated job: detached actors, named as ours are, each doing one piece of work
JOB = """
import json, os, sys, ray
ray.init(address=sys.argv[1], namespace="unrelated", log_to_driver=False)

@ray.remote(num_cpus=0)
class ShardWorker:
    def work(self, x):
        return (os.getpid(), x * 2)

@ray.remote(num_cpus=0)
class ModelWorker:
    def work(self, x):
        return (os.getpid(), x + 1)

if sys.argv[2] == "start":
    actors = [cls.options(name=name, lifetime="detached").remote()
              for cls, name in ((ShardWorker, "ShardWorker"), (ModelWorker, "ModelWorker"))]
else:
    actors = [ray.get_actor(name) for name in ("ShardWorker", "ModelWorker")]
print(json.dumps([ray.get(a.work.remote(20), timeout=120) for a in actors]))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ray_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    return env


def ray_start(temp: Path, port: int) -> None:
    """`ray start --head` on loopback: its processes daemonise (none is this test's
    descendant, as with a cluster someone else started)."""
    head = subprocess.run(
        [RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats",
         f"--temp-dir={temp}"],
        env=ray_env(), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert head.returncode == 0, head.stderr


def unrelated_job(address: str, step: str) -> list[list[int]]:
    """Run the unrelated job's driver (``start``: create the actors; ``again``: call the
    same actors); returns ``[pid, answer]`` per actor."""
    done = subprocess.run(
        [sys.executable, "-c", JOB, address, step],
        env=ray_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def cluster_processes(temp: Path, actor_pids: list[int]) -> dict[int, str]:
    """The unrelated cluster's processes: those whose command line names its temp dir, their
    descendants (idle pooled workers aside: Ray ends those itself), and its actors; pid ->
    command line."""
    found: dict[int, str] = {}
    for proc in psutil.process_iter(["cmdline"]):
        if str(temp) in " ".join(proc.info["cmdline"] or []):
            for each in (proc, *proc.children(recursive=True)):
                found[each.pid] = " ".join(each.cmdline()).strip()
    for pid in actor_pids:
        found[pid] = " ".join(psutil.Process(pid).cmdline()).strip()
    return {pid: line for pid, line in found.items() if not line.startswith("ray::IDLE")}


@pytest.fixture
def unrelated() -> Iterator[dict[str, Any]]:
    """Someone else's cluster with a job's two actors alive on it."""
    temp = Path(tempfile.mkdtemp(prefix="u", dir="/tmp"))  # AF_UNIX paths must stay short
    port = free_port()
    try:
        ray_start(temp, port)
        address = f"127.0.0.1:{port}"
        answers = unrelated_job(address, "start")
        yield {"temp": temp, "port": port, "address": address, "answers": answers}
    finally:
        stop_cluster(temp, port)


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_our_kills_leave_an_unrelated_ray_job_running(
    unrelated: dict[str, Any],
    tmp_path: Path,
    actor_killer: Callable[[Path], list[int]],
    own_processes: Callable[[str], list[Any]],
) -> None:
    answers = unrelated["answers"]
    assert [answer for _, answer in answers] == [40, 21]
    theirs = cluster_processes(unrelated["temp"], [pid for pid, _ in answers])
    # the test proves something only if a lookup by name would hit their actors, and ours
    # (this process's descendants) cannot: they are someone else's
    titles = " ".join(theirs.values())
    assert "ray::ShardWorker" in titles and "ray::ModelWorker" in titles, theirs
    mine = {p.pid for p in psutil.Process().children(recursive=True)}
    assert not mine & set(theirs), "the unrelated cluster runs under this test's process"
    assert not {p.pid for p in own_processes("ray::")} & set(theirs)

    # a real job of ours, its actor SIGKILLed mid-job as the suite's resume tests do
    out = tmp_path / "out"
    killed = actor_killer(out)
    spec = sequence_spec(str(out), rows=600, shard_rows=100, actors=1, sleep_seconds=0.5)
    result = run_job(spec)
    assert killed, "no actor of ours was killed"
    assert killed[0] not in theirs
    assert open_dataset(result["uri"]).manifest.rows == 600

    # a `ray start` cluster of ours, started and stopped as the cluster tests do
    temp, port = Path(tempfile.mkdtemp(prefix="o", dir="/tmp")), free_port()
    try:
        ray_start(temp, port)
    finally:
        stop_cluster(temp, port)

    gone = {pid: line for pid, line in theirs.items() if not psutil.pid_exists(pid)}
    assert not gone, f"the unrelated cluster lost processes: {gone}"
    assert unrelated_job(unrelated["address"], "again") == answers  # same actors, same work
