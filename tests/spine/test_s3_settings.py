"""Real S3 settings over HTTP (moto on loopback): a non-default region with path-style
addressing; refused credentials fail before generation naming the URI; no secret is written
to any file the job produces or to its logs."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from synthfactory.storage import open_store

SECRET_ID = "AKIASYNTHFACTORYTEST"
SECRET_KEY = "sf-very-secret-key-0123456789abcdef"


def job_spec(tmp_path: Path, output: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "regional",
                "modality": "tabular",
                "rows": 600,
                "shard_rows": 300,
                "output": output,
                "metrics": {"enabled": False},
                "generator": {
                    "kind": "python",
                    "factory": "synthfactory_workers.demo:SequenceGenerator",
                },
                "storage": {"s3": {"region": "eu-west-2", "addressing_style": "path"}},
                "resources": {"actors": 1, "num_cpus": 0.5},
            }
        )
    )
    return path


def cli(spec: Path, endpoint: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PREFECT_API_URL")}
    env.update(
        AWS_ACCESS_KEY_ID=SECRET_ID,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION="us-east-1",
        PREFECT_HOME=str(tmp_path / "prefect"),
    )
    return subprocess.run(
        [sys.executable, "-m", "synthfactory_flows.cli", "run", str(spec), "-v"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def regional_bucket(s3_endpoint: str) -> Iterator[str]:
    name = "eu-" + os.urandom(4).hex()
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="eu-west-2").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
    )
    yield f"s3://{name}"


def test_region_path_style_and_no_secret_anywhere(
    regional_bucket: str, s3_endpoint: str, tmp_path: Path
) -> None:
    out = f"{regional_bucket}/data/regional"
    run = cli(job_spec(tmp_path, out), s3_endpoint, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "status: published, rows: 600" in run.stdout
    store = open_store(out)
    keys = store.list()
    assert any(k.endswith("manifest.json") for k in keys)
    for key in keys:
        blob = store.get_bytes(key)
        assert SECRET_KEY.encode() not in blob and SECRET_ID.encode() not in blob, key
    logs = run.stdout + run.stderr
    assert SECRET_KEY not in logs and SECRET_ID not in logs


def set_auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request, timeout=10).read()


def test_refused_credentials_fail_before_generation(
    regional_bucket: str, s3_endpoint: str, tmp_path: Path
) -> None:
    out = f"{regional_bucket}/data/denied"
    set_auth(s3_endpoint, "0")  # from now on moto checks keys: ours are unknown to it
    try:
        run = cli(job_spec(tmp_path, out), s3_endpoint, tmp_path)
    finally:
        set_auth(s3_endpoint, "inf")
    assert run.returncode == 2, run.stdout + run.stderr
    assert out in run.stderr and "fix:" in run.stderr
    assert "not recognised" in run.stderr or "denied" in run.stderr
    assert "Beginning flow run" not in run.stdout + run.stderr, "no flow may start"
    assert open_store(out).list() == [], "nothing may be written"
    assert SECRET_KEY not in run.stdout + run.stderr
