"""The dashboard API without a browser: roots fence what can be read, actions need the token,
remote binding refuses to start without one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from synthfactory_flows.dashboard.app import create_app


def test_actions_need_the_token_and_reads_stay_inside_roots(tmp_path: Path) -> None:
    client = TestClient(create_app([str(tmp_path)], token="s3cret"))
    assert client.get("/api/datasets").status_code == 200
    assert client.post("/api/runs/00000000-0000-0000-0000-000000000000/cancel").status_code == 401
    assert (
        client.post("/api/deployments/x/run", headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert client.get("/api/dataset", params={"uri": "/etc"}).status_code == 403
    assert (
        client.get("/api/file", params={"uri": str(tmp_path), "key": "../secret"}).status_code
        == 403
    )


def test_remote_reads_need_the_token(tmp_path: Path) -> None:
    client = TestClient(create_app([str(tmp_path)], token="s3cret", require_token_to_read=True))
    assert client.get("/api/datasets").status_code == 401
    assert client.get("/api/datasets", params={"token": "s3cret"}).status_code == 200
    assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200


@pytest.mark.parametrize(
    "args,message",
    [
        (["--host", "0.0.0.0"], "--allow-remote"),
        (["--host", "0.0.0.0", "--allow-remote"], "needs an access token"),
    ],
)
def test_binding_beyond_loopback_needs_a_flag_and_a_token(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "synthfactory_flows.cli",
            "serve",
            "--datasets",
            str(tmp_path),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode == 2 and message in out.stderr
