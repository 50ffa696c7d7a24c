"""The dashboard in a real headless Chromium (Debian's), against real datasets and a job
running while the page is open. Screenshots are kept under the test's tmp folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

SEQ = "synthfactory_workers.demo:SequenceGenerator"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed"
)


def spec(path: Path, output: Path, rows: int, shard_rows: int, **options: object) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": path.stem,
                "modality": "image" if "image_size" in options else "tabular",
                "rows": rows,
                "shard_rows": shard_rows,
                "output": str(output),
                "generator": {"kind": "python", "factory": SEQ, "options": options},
                "resources": {"actors": 1, "num_cpus": 0.5},
            }
        )
    )
    return path


def write_fair_table(tmp: Path) -> Path:
    import pyarrow.parquet as pq

    from synthfactory_workers.contract import ShardTask
    from synthfactory_workers.demo import BiasedTable

    path = tmp / "fair.parquet"
    pq.write_table(BiasedTable(0.0).generate(ShardTask(0, 0, 1000, 1)), path)
    return path


def run(env: dict[str, str], *args: str, wait: bool = True) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthfactory_flows.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if wait:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
    return proc


@pytest.fixture
def dashboard(prefect_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path, dict]]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    root = tmp_path / "datasets"
    root.mkdir()
    env = dict(prefect_env)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "synthfactory_flows.cli",
            "serve",
            "--datasets",
            str(root),
            "--datasets",
            "s3://no-such-bucket-for-dashboard/x",
            "--port",
            str(port),
            "--no-worker",
            "--logs",
            str(tmp_path / "logs"),
        ],
        env={
            **env,
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "api/datasets", timeout=10)
            break
        except OSError:
            time.sleep(0.5)
    yield url, root, env
    proc.terminate()
    proc.wait(timeout=30)


def check_image_dataset_page(page: Any, url: str) -> None:
    """The image dataset's page: the row browser shows ten whole rows, each image cell a
    thumbnail that loads, and pages on to the last two rows."""
    from urllib.parse import urlencode

    page.goto(url)
    pictures = page.get_attribute("#catalog tr[data-uri*='pictures']", "data-uri", timeout=30_000)
    page.goto(url + "dataset?" + urlencode({"uri": pictures}))
    page.wait_for_selector("body[data-loaded]", timeout=60_000)
    loaded = (
        "n => [...document.querySelectorAll('#samples table img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length >= n"
    )
    page.wait_for_function(loaded, arg=10, timeout=30_000)
    page.click("#next")
    page.wait_for_function(
        "() => document.querySelectorAll('#samples table tbody tr').length === 2"
    )
    page.wait_for_function(loaded, arg=2, timeout=30_000)


def check_tabular_dataset_page(page: Any, url: str) -> None:
    """The dataset page of the gated tabular job (loans, scored against a reference): its
    bias metric as a trend and a failed gate, and per-column real-vs-synthetic plots."""
    from urllib.parse import urlencode

    page.goto(url)
    loans = page.get_attribute("#catalog tr[data-uri*='loans']", "data-uri", timeout=30_000)
    page.goto(url + "dataset?" + urlencode({"uri": loans}))
    page.wait_for_selector("body[data-loaded]", timeout=60_000)
    assert "bias.demographic_parity_difference" in page.inner_text("#trend")
    gate = page.inner_text("#gates")
    assert "demographic_parity_difference" in gate and "failed" in gate.lower(), gate
    page.wait_for_function(
        "() => [...document.querySelectorAll('#plots img.plot[src*=column_]')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length >= 2",
        timeout=30_000,
    )


def test_catalog_progress_thumbnails_and_storage_errors(
    dashboard: tuple[str, Path, dict], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    url, root, env = dashboard
    shots = tmp_path / "screenshots"
    shots.mkdir()
    run(env, "run", str(spec(tmp_path / "tables.yaml", root / "tables", 600, 200)), "-q")
    run(
        env,
        "run",
        str(spec(tmp_path / "pictures.yaml", root / "pictures", 12, 6, image_size=32)),
        "-q",
    )
    biased = tmp_path / "loans.yaml"
    biased.write_text(
        yaml.safe_dump(
            {
                "name": "loans",
                "modality": "tabular",
                "rows": 400,
                "shard_rows": 400,
                "output": str(root / "loans"),
                "generator": {
                    "kind": "python",
                    "factory": "synthfactory_workers.demo:BiasedTable",
                    "options": {"bias": 0.45},
                },
                "metrics": {
                    "reference": str(write_fair_table(tmp_path)),
                    "target_column": "approved",
                    "sensitive_columns": ["group"],
                },
                "gates": {"bias.demographic_parity_difference": "<= 0.1"},
                "resources": {"actors": 1, "num_cpus": 0.5},
            }
        )
    )
    gated = run(env, "run", str(biased), "-q", wait=False)
    out, _ = gated.communicate(timeout=300)
    assert gated.returncode == 1 and "quarantined" in out, out
    slow = run(
        env,
        "run",
        str(spec(tmp_path / "slow.yaml", root / "slow", 3000, 200, sleep_seconds=1.0)),
        "-q",
        wait=False,
    )
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_selector("#catalog tbody tr[data-uri]", timeout=30_000)
            catalog = page.inner_text("#catalog")
            assert "tables" in catalog and "pictures" in catalog and "published" in catalog
            quarantined = page.inner_text("#catalog tr[data-uri*='loans'] td.status")
            assert quarantined == "quarantined"
            assert "demographic_parity_difference" in page.inner_text(
                "#catalog tr[data-uri*='loans']"
            )
            assert "storage error for s3://no-such-bucket-for-dashboard/x" in page.inner_text(
                "#errors"
            )
            # a running job's progress advances without a reload
            page.wait_for_selector("#running tr[data-uri] td.rows", timeout=120_000)

            def rows_done() -> int:
                text = page.inner_text("#running tr[data-uri] td.rows")
                return int(text.split("/")[0].strip().replace(",", "") or 0)

            first = rows_done()
            deadline = time.time() + 90
            while time.time() < deadline and rows_done() <= first:
                time.sleep(1)
            assert rows_done() > first, "progress did not advance"
            page.screenshot(path=str(shots / "running.png"), full_page=True)
            # an image dataset shows thumbnails
            page.click("#catalog a:text('pictures')")
            page.wait_for_selector("#detail img", timeout=30_000)
            # thumbnails load asynchronously: wait for them (and the card's contact sheet)
            page.wait_for_function(
                "() => [...document.querySelectorAll('#detail table img')]"
                ".filter(i => i.complete && i.naturalWidth > 0).length >= 6",
                timeout=60_000,
            )
            sheet = "#detail img.plot[src*='thumbnails.png']"
            page.wait_for_function(
                f"() => {{ const i = document.querySelector({sheet!r}); "
                "return i && i.complete && i.naturalWidth > 0; }",
                timeout=30_000,
            )
            page.screenshot(path=str(shots / "thumbnails.png"), full_page=True)
            check_image_dataset_page(page, url)
            check_tabular_dataset_page(page, url)
            page.screenshot(path=str(shots / "loans-dataset.png"), full_page=True)
            browser.close()
    finally:
        slow.terminate()
        slow.wait(timeout=60)
    assert (shots / "running.png").stat().st_size > 0
    print(f"screenshots: {shots}")
