"""Kill the whole `synthfactory run` process mid-job; the re-run resumes and keeps what was done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from synthfactory.dataset import list_versions, open_dataset
from synthfactory.storage import open_store

from .helpers import sequence_spec


def start(spec: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "synthfactory_flows.cli", "run", str(spec), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


def test_killed_run_resumes_without_losing_or_duplicating(tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec_path = tmp_path / "job.yaml"
    spec = sequence_spec(str(out), rows=2000, shard_rows=200, actors=1, sleep_seconds=0.6)
    spec_path.write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PREFECT_API_URL")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")

    proc = start(spec_path, env)
    deadline = time.time() + 240
    markers: list[Path] = []
    while time.time() < deadline and proc.poll() is None:
        markers = list(out.glob("*/_shards/*.json"))
        if len(markers) >= 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, f"run ended before it could be killed:\n{proc.stdout.read()}"  # type: ignore[union-attr]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    assert not list(out.rglob("manifest.json")), "a killed run must not look complete"
    (version,) = list_versions(open_store(str(out)))
    # its writer is dead on this machine: the catalog says so at once, not after the ttl
    assert version.manifest is None and version.status == "crashed"
    kept = {
        p.name: p.stat().st_mtime_ns
        for p in out.glob("*/data/*.parquet")
        if (p.parent.parent / "_shards" / (p.stem + ".json")).exists()
    }
    assert len(kept) >= 3
    (progress_file,) = out.glob("*/_progress.json")
    before = json.loads(progress_file.read_text())["history"]
    assert before

    rerun = subprocess.run(
        [sys.executable, "-m", "synthfactory_flows.cli", "run", str(spec_path), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    ds = open_dataset(str(out))
    assert ds.manifest.rows == 2000
    assert [s.index for s in ds.manifest.shards] == list(range(10))
    assert ds.to_arrow()["id"].to_pylist() == list(range(2000))
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*/data/*.parquet")}
    for name, mtime in kept.items():
        assert after[name] == mtime, f"committed shard {name} was regenerated"
    history = json.loads(progress_file.read_text())["history"]  # the run page's charts
    assert history[: len(before)] == before and len(history) > len(before), "history restarted"
