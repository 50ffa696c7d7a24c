"""History that stays and tells the truth: two `synthfactory run`s with default settings
(Prefect's embedded server, its SQLite database under PREFECT_HOME), one finishing and one
SIGKILLed mid-job, then `synthfactory serve` started afterwards in a fresh process on the
same PREFECT_HOME lists both runs, each with its state and its dataset version; the killed
one, which Prefect's database still holds as Running, is shown as Crashed."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from synthfactory.dataset import list_versions
from synthfactory.storage import open_store

from .builders import wait_for_first_shard
from .test_dashboard import CHROME_ARGS, CHROMIUM

SEQUENCE = "synthfactory_workers.demo:SequenceGenerator"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_spec(path: Path, output: Path, rows: int, sleep_seconds: float) -> Path:
    spec = {
        "name": path.stem,
        "modality": "tabular",
        "generator": {
            "kind": "python",
            "factory": SEQUENCE,
            "options": {"sleep_seconds": sleep_seconds},
        },
        "rows": rows,
        "shard_rows": 100,
        "output": str(output),
        "resources": {"actors": 1, "num_cpus": 0.5},
        "metrics": {"enabled": False},
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "synthfactory_flows.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


def kill_after_first_shard(proc: subprocess.Popen[str], out: Path) -> None:
    """SIGKILL the whole process group of a running ``synthfactory run`` once it has
    committed a shard and holds its lease (its embedded Prefect server dies with it)."""
    try:
        wait_for_first_shard(proc, out)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def wait_for_runs(url: str, proc: subprocess.Popen[str], count: int) -> list[dict[str, Any]]:
    deadline = time.time() + 180
    body: dict[str, Any] = {}
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            body = get(url + "api/runs")
        except OSError:
            time.sleep(0.5)
            continue
        if len(body.get("runs", [])) >= count:
            return list(body["runs"])
        time.sleep(0.5)
    raise AssertionError(f"serve did not list {count} runs: {body}")


def runs_table(url: str, shot: Path) -> dict[str, tuple[str, str]]:
    """The main page's *Recent flow runs* in Chromium: per dataset, the state shown and the
    label of the link to its run page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        page.wait_for_selector("#runs tbody tr[data-run-id] a.page-link", timeout=60_000)
        page.screenshot(path=str(shot), full_page=True)
        # the catalog says why: its holder died (or, later, its lease expired)
        note = page.inner_text("#catalog tr[data-uri*='dead'] .note:not(.uri)")
        assert re.search(r"the process holding the lease, .* is gone|expired", note), note
        shown = {}
        for row in page.locator("#runs tbody tr[data-run-id]").all():
            label = row.locator("a.page-link").inner_text()
            shown[label.split()[0]] = (row.locator("td").nth(1).inner_text(), label)
        browser.close()
    return shown


def test_a_later_serve_lists_default_runs_and_a_killed_one_as_crashed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PREFECT_API_URL")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")  # default settings, a fresh database
    root = tmp_path / "datasets"
    finished = cli(env, "run", str(write_spec(tmp_path / "done.yaml", root / "done", 200, 0)))
    output, _ = finished.communicate(timeout=300)
    assert finished.returncode == 0 and "status: published" in output, output
    killed = cli(env, "run", str(write_spec(tmp_path / "dead.yaml", root / "dead", 3000, 0.5)))
    kill_after_first_shard(killed, root / "dead")
    versions = {Path(v.uri).parent.name: v for v in list_versions(open_store(str(root)))}
    assert versions["dead"].status == "crashed" and versions["done"].status == "published"

    port = free_port()
    serve = cli(
        env,
        "serve", "--datasets", str(root), "--port", str(port),
        "--prefect-port", str(free_port()), "--no-worker", "--logs", str(tmp_path / "logs"),
    )  # fmt: skip
    try:
        runs = wait_for_runs(f"http://127.0.0.1:{port}/", serve, 2)
        if CHROMIUM:
            shown = runs_table(f"http://127.0.0.1:{port}/", tmp_path / "runs.png")
            assert shown["dead"] == ("Crashed", f"dead {Path(versions['dead'].uri).name}")
            assert shown["done"] == ("Completed", f"done {Path(versions['done'].uri).name}")
    finally:
        serve.terminate()
        serve.wait(timeout=60)
    by_dataset = {r["dataset"]["name"]: r for r in runs if "dataset" in r}
    assert set(by_dataset) == {"done", "dead"}, runs
    done, dead = by_dataset["done"], by_dataset["dead"]
    assert done["state"] == "Completed" and done["dataset"]["status"] == "published"
    assert done["dataset"]["uri"] == versions["done"].uri
    # Prefect's own record of the killed run never left Running; the dashboard says Crashed
    assert dead["prefect_state"] == "Running" and dead["state"] == "Crashed"
    assert dead["dataset"] == {
        "uri": versions["dead"].uri,
        "name": "dead",
        "version": Path(versions["dead"].uri).name,
        "status": "crashed",
    }
