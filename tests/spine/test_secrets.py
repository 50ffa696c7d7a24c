"""Secrets reach the actors and tasks, and no file anywhere holds them.

Ray writes every ``runtime_env`` it sets up, env_vars included, to its session's
``runtime_env_agent.log`` (mode 0644): credentials must travel another way. These tests
start a Ray of their own (a private temp dir, so every file Ray writes can be read back)
*before* the secrets exist in the driver's environment, and with the AWS keys of the test
session removed from it: its workers can only learn the secrets through the channel the pool
provides. Each test runs a real job, then reads every file Ray, Prefect and the job wrote,
byte by byte, for the secret values.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from synthfactory.dataset import open_dataset
from synthfactory.spec import load_spec

from ..text.fault_proxy import STUB_MODEL, FaultProxy
from .helpers import sequence_spec

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

#: what the driver's environment may hold that Ray's workers must not inherit here
AWS_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@pytest.fixture(scope="module")
def ray_dir() -> Iterator[Path]:
    """A local Ray whose every file lies under the returned folder, started without the
    session's AWS keys in its environment (its workers have no credentials of their own).
    The session's Ray, if one runs, is stopped for the module and started again after."""
    import ray

    was_running = ray.is_initialized()
    if was_running:
        ray.shutdown()
    # short: Ray's unix sockets live under it (107 characters at most)
    temp = Path(tempfile.mkdtemp(prefix="sfray-", dir="/tmp"))
    hidden = {k: os.environ.pop(k) for k in AWS_SECRETS if k in os.environ}
    try:
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=str(temp),
        )
    finally:
        os.environ.update(hidden)
    yield temp
    ray.shutdown()
    if was_running:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    shutil.rmtree(temp, ignore_errors=True)


def files_under(*roots: Path) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                found.append(path)
    return found


def prefect_dirs() -> list[Path]:
    """PREFECT_HOME and the folder of the Prefect server's database (the test harness
    keeps it elsewhere): flow parameters, logs and results land there."""
    from prefect.settings import PREFECT_HOME, PREFECT_SERVER_DATABASE_CONNECTION_URL

    dirs = [Path(PREFECT_HOME.value())]
    url = str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value() or "")
    if url.startswith("sqlite"):
        dirs.append(Path(url.split(":///", 1)[1]).parent)
    return [d for d in dirs if d.exists()]


def assert_nowhere(values: list[str], roots: list[Path], blobs: dict[str, bytes]) -> int:
    """No value in any file under ``roots`` nor in ``blobs``; returns how many files were
    read (so a test can check it read Ray's logs at all)."""
    needles = [v.encode() for v in values]
    paths = files_under(*roots)
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:  # a file removed while walking (a worker's socket, a temp file)
            continue
        for needle in needles:
            assert needle not in data, f"a secret is written in {path}"
    for key, data in blobs.items():
        for needle in needles:
            assert needle not in data, f"a secret is written in {key}"
    return len(paths)


def read_ray_logs(ray_dir: Path) -> None:
    """The file that leaked the secrets before: Ray must have written it, or the test
    proves nothing."""
    logs = list(ray_dir.rglob("runtime_env_agent.log"))
    assert logs and any(p.stat().st_size for p in logs), "Ray wrote no runtime_env_agent.log"


def test_api_keys_reach_the_actors_and_no_file(
    ray_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two keys: the job's model (the shard's actor) and a second model on its own pool
    (a model actor), each on the openai backend with a key variable of its own."""
    from synthfactory_flows.generate import run_job

    names = ["SF_SECRET_TEST_KEY_" + secrets.token_hex(4).upper() for _ in range(2)]
    keys = ["sk-sf-" + secrets.token_hex(20) for _ in range(2)]
    for name, key in zip(names, keys, strict=True):
        monkeypatch.setenv(name, key)  # after Ray started: its workers never inherit them
    server = FaultProxy(upstream=None)  # an OpenAI-compatible server on loopback

    def backend(name: str) -> dict[str, str]:
        return {"kind": "openai", "base_url": server.base_url, "api_key_env": name}

    try:
        spec = load_spec(
            {
                "name": "secret-text",
                "modality": "text",
                "rows": 8,
                "shard_rows": 4,
                "seed": 5,
                "output": str(tmp_path / "out"),
                "generator": {
                    "kind": "llm",
                    "model": STUB_MODEL,
                    "backend": backend(names[0]),
                    "models": {"judge": {"model": STUB_MODEL, "backend": backend(names[1])}},
                    "columns": [
                        {"kind": "choice", "name": "thing", "choices": ["fruit", "tool"]},
                        {"kind": "llm_text", "name": "question", "template": "Name a {{ thing }}."},
                        {
                            "kind": "llm_text",
                            "name": "verdict",
                            "template": "Is this a {{ thing }}? {{ question }}",
                            "model": "judge",
                        },
                    ],
                    "sampling": {"max_new_tokens": 8},
                    "dedup": {"exact": False, "near": False},
                },
                "top_up_rounds": 0,
                "retries": {"shard_retries": 0},
                "resources": {
                    "actors": 1,
                    "num_cpus": 0.5,
                    "batch_size": 4,
                    "models": {"judge": {"actors": 1, "num_cpus": 0.25}},
                },
                "metrics": {"enabled": False},
            }
        )
        result = run_job(spec)
    finally:
        server.stop()
    assert open_dataset(result["uri"]).to_arrow().num_rows == 8
    # each actor had its key (an unset variable fails its backend) and sent it as a header
    assert server.authorizations == {f"Bearer {key}" for key in keys}
    assert server.total_forwarded == 16
    read_ray_logs(ray_dir)
    roots = [ray_dir, tmp_path, *prefect_dirs()]
    assert assert_nowhere(keys, roots, {}) > 10


def test_aws_keys_reach_the_actors_and_tasks_and_no_file(
    ray_dir: Path, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthfactory_flows.generate import run_job

    key_id = "AKIA" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    token = "FwoG" + secrets.token_urlsafe(40)
    # after Ray started, which has no AWS keys: only the pool's channel can bring these
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    bucket = "secrets-" + secrets.token_hex(4)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=bucket)
    data = sequence_spec(f"s3://{bucket}/data/seq", rows=400, shard_rows=200, actors=1)
    # the metrics read the shards back in Ray tasks: the tasks need the keys too
    data["metrics"] = {"enabled": True}
    result = run_job(load_spec(data))
    assert result["uri"].startswith(f"s3://{bucket}/")
    assert open_dataset(result["uri"]).to_arrow().num_rows == 400
    read_ray_logs(ray_dir)
    blobs: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            blobs[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    assert any(k.endswith("manifest.json") for k in blobs)
    roots = [ray_dir, tmp_path, *prefect_dirs()]
    assert assert_nowhere([key_id, secret_key, token], roots, blobs) > 10
