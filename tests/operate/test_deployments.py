"""Scheduled jobs on a real Prefect server: interval runs write new versions; a concurrency
limit of one holds the second run until the first ends."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from synthfactory.dataset import list_versions
from synthfactory.storage import open_store

SEQ = "synthfactory_workers.demo:SequenceGenerator"


def write_spec(path: Path, output: Path, **options: object) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": path.stem,
                "modality": "tabular",
                "rows": 400,
                "shard_rows": 200,
                "output": str(output),
                "generator": {"kind": "python", "factory": SEQ, "options": options},
                "resources": {"actors": 1, "num_cpus": 0.5},
            }
        )
    )
    return path


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthfactory_flows.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def published(output: Path) -> list[str]:
    if not output.exists():
        return []
    return [v.prefix for v in list_versions(open_store(str(output))) if v.status == "published"]


def test_interval_schedule_writes_a_new_version_per_run(
    prefect_env: dict[str, str], worker: object, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "every-10s.yaml", out)
    made = cli(prefect_env, "deploy", str(spec), "--interval", "10")
    assert made.returncode == 0, made.stderr
    listing = cli(prefect_env, "deployments", "ls")
    assert "every-10s" in listing.stdout and "active" in listing.stdout
    deadline = time.time() + 240
    while time.time() < deadline and len(published(out)) < 2:
        time.sleep(2)
    versions = published(out)
    assert len(versions) >= 2, f"expected two scheduled runs, got {versions}"
    assert len(set(versions)) == len(versions)
    assert cli(prefect_env, "deployments", "pause", "every-10s").returncode == 0
    assert "paused" in cli(prefect_env, "deployments", "ls").stdout
    assert cli(prefect_env, "deployments", "delete", "every-10s").returncode == 0
    assert "every-10s" not in cli(prefect_env, "deployments", "ls").stdout
    missing = cli(prefect_env, "deployments", "pause", "no-such")
    assert missing.returncode == 2 and "no deployment named" in missing.stderr


RUN_TIMES = """
import asyncio, json, sys
from prefect.client.orchestration import get_client

async def main():
    async with get_client() as client:
        dep = await client.read_deployment_by_name("synthfactory-generate/" + sys.argv[1])
        if sys.argv[2] == "start":
            ids = [str((await client.create_flow_run_from_deployment(dep.id)).id)
                   for _ in range(2)]
            print(json.dumps(ids))
            return
        runs = [await client.read_flow_run(i) for i in json.loads(sys.argv[3])]
        print(json.dumps([[r.state_type.value, r.start_time and r.start_time.timestamp(),
                           r.end_time and r.end_time.timestamp()] for r in runs]))

asyncio.run(main())
"""


def test_concurrency_limit_of_one_holds_the_second_run(
    prefect_env: dict[str, str], worker: object, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path / "one-at-a-time.yaml", tmp_path / "out", sleep_seconds=2.0)
    made = cli(prefect_env, "deploy", str(spec), "--concurrency", "1")
    assert made.returncode == 0, made.stderr

    def script(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", RUN_TIMES, "one-at-a-time", *args],
            env=prefect_env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    ids = script("start")
    deadline = time.time() + 300
    while time.time() < deadline:
        states = json.loads(script("read", ids))
        if all(s[0] in ("COMPLETED", "FAILED", "CRASHED") for s in states):
            break
        time.sleep(3)
    assert [s[0] for s in states] == ["COMPLETED", "COMPLETED"], states
    (_, _start_a, end_a), (_, start_b, _end_b) = sorted(states, key=lambda s: s[1])
    assert start_b >= end_a - 0.5, "the second run started before the first one ended"
