"""Script payloads in what the dashboard shows (output paths, names, descriptions, sample
values, gate names, lease hosts, broken-manifest errors), opened in a real headless
Chromium (Debian's) through `synthfactory serve`: no payload runs, every one shows as text,
and the access token never appears in a URL."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pytest

from synthfactory.dataset import write_shard
from synthfactory.storage import open_store

from .builders import break_manifest, publish, unfinished
from .test_dashboard import CHROME_ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed"
)

QUOTE = "x');window.__pwned=1;alert(1);('"
IMG = '<img src=x onerror="window.__pwned=2;alert(2)">'
SCRIPT = '"><script>window.__pwned=3;alert(3)</script>'
TITLE = "</title><script>document.title='pwned'</script>"
PAYLOADS = (QUOTE, IMG, SCRIPT, TITLE)


@dataclass
class Dashboard:
    url: str
    sign_in: str
    token: str
    root: Path
    output: list[str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hostile_datasets(root: Path) -> dict[str, str]:
    """Versions whose every shown value is a payload; returns their URIs by role."""
    texts = pa.table(
        {
            "id": pa.array([0, 1, 2, 3], pa.int64()),
            "completion": pa.array(list(PAYLOADS)),
        }
    )
    alpha = publish(
        root,
        f"{QUOTE}/{IMG}/v-1",  # two folders whose names are payloads
        texts,
        name=f"alpha {IMG}",
        description=f"{SCRIPT} {QUOTE} {TITLE}",
        gates=[{"metric": IMG, "condition": QUOTE, "passed": False}],
        flow_run_id=SCRIPT,
    )
    # a path holding '"><script>...</script>' (its '/' splits it into two folders)
    bravo = publish(root, f"{SCRIPT}/v-2", texts, name="bravo", description=IMG)
    running = unfinished(root, f"{IMG}/v-run", name=f"charlie {QUOTE}", lease_expires_in=600)
    crashed = unfinished(root, "crash/v-dead", name=f"delta {SCRIPT}", lease_expires_in=-5,
                         host=IMG)  # fmt: skip
    broken = break_manifest(Path(alpha) / "manifest.json", root / QUOTE / "v-broken")
    return {
        "alpha": alpha,
        "bravo": bravo,
        "running": str(running),
        "crashed": str(crashed),
        "broken": str(broken),
    }


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Dashboard]:
    """`synthfactory serve` on loopback, its Prefect API pointed at the dashboard itself
    (every Prefect call fails fast: the runs list shows an error, as with a server down)."""
    root = tmp_path / "datasets"
    root.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    env.pop("SYNTHFACTORY_DASHBOARD_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthfactory_flows.cli", "serve", "--datasets", str(root),
         "--port", str(port), "--no-worker", "--logs", str(tmp_path / "logs")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.time() + 90
    while time.time() < deadline and not any(line.startswith("access token:") for line in lines):
        assert proc.poll() is None, "".join(lines)
        time.sleep(0.2)
    printed = "".join(lines)
    sign_in = re.search(r"^sign in:\s+(\S+)", printed, flags=re.M)
    token = re.search(r"^access token:\s+(\S+)", printed, flags=re.M)
    assert sign_in and token, printed
    try:
        yield Dashboard(f"http://127.0.0.1:{port}/", sign_in[1], token[1], root, lines)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_script_payloads_show_as_text_and_never_run(dashboard: Dashboard, tmp_path: Path) -> None:
    from playwright.sync_api import Page, sync_playwright

    uris = hostile_datasets(dashboard.root)
    printed = "".join(dashboard.output)
    # the printed dashboard URL carries no token; the sign-in link carries a one-time code
    assert dashboard.token not in printed.split("access token:")[0]
    assert "token=" not in printed
    shots = tmp_path / "screenshots"
    shots.mkdir()
    dialogs: list[str] = []
    requests: list[str] = []
    violations: list[str] = []

    def watch(page: Page) -> None:
        page.on("dialog", lambda d: record_dialog(dialogs, d))
        page.on("request", lambda r: requests.append(r.url))
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )

    def assert_nothing_ran(page: Page) -> None:
        assert page.evaluate("window.__pwned") is None
        assert page.title() == "synthfactory"
        assert dialogs == []
        assert page.locator("img[src='x'], img[src$='/x']").count() == 0
        assert page.evaluate("document.scripts.length") == 2  # common.js, page.js: no other

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1200})
        page = context.new_page()
        watch(page)
        # the one-time link becomes an HttpOnly cookie and a URL without any credential
        page.goto(dashboard.sign_in)
        assert page.url == dashboard.url
        (cookie,) = [c for c in context.cookies() if c["name"] == "synthfactory_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert "synthfactory_session" not in page.evaluate("document.cookie")
        page.wait_for_selector("#signed-in", state="visible", timeout=30_000)
        assert page.is_hidden("#signin")
        # every hostile row is listed, its values as text
        page.wait_for_function(
            "() => document.querySelectorAll('#catalog tbody tr[data-uri]').length >= 4",
            timeout=30_000,
        )
        page.wait_for_selector("#running tbody tr[data-uri]", timeout=30_000)
        catalog = page.inner_text("#catalog")
        for uri in (uris["alpha"], uris["bravo"], uris["crashed"], uris["broken"]):
            assert uri in catalog, uri
        assert f"alpha {IMG}" in catalog and f"{IMG} {QUOTE}" in catalog  # name, gate
        assert "not a readable manifest" in catalog and f"on {IMG} (pid 4242)" in catalog
        assert f"charlie {QUOTE}" in page.inner_text("#running")
        assert page.get_attribute(f"#catalog a:text-is('alpha {IMG}')", "data-uri") == uris["alpha"]
        # the Prefect link is built from a hostile flow run id: still an http(s) link
        href = page.get_attribute(f"#catalog tr:has(a:text-is('alpha {IMG}')) td a[target]", "href")
        assert href and href.startswith(dashboard.url + "runs/flow-run/"), href
        assert_nothing_ran(page)
        page.screenshot(path=str(shots / "catalog.png"), full_page=True)
        # the detail view: description, sample values, the spec, all text
        page.click(f"#catalog a:text-is('alpha {IMG}')")
        page.wait_for_selector("#detail table.sample tbody tr", timeout=30_000)
        detail = page.inner_text("#detail")
        assert uris["alpha"] in detail
        assert f"{SCRIPT} {QUOTE} {TITLE}" in detail  # the description
        cells = page.locator("#detail table.sample td").all_inner_texts()
        for payload in PAYLOADS:
            assert payload in cells, payload
        assert_nothing_ran(page)
        page.screenshot(path=str(shots / "alpha.png"), full_page=True)
        page.click("#catalog a:text-is('bravo')")
        page.wait_for_function(
            "() => document.querySelector('#detail h2') &&"
            " document.querySelector('#detail h2').textContent.startsWith('bravo')",
            timeout=30_000,
        )
        assert uris["bravo"] in page.inner_text("#detail") and IMG in page.inner_text("#detail")
        # the broken version is listed, not a link; a few refreshes later nothing has run
        links = page.evaluate(
            "u => [...document.querySelectorAll('#catalog a[data-uri]')]"
            ".filter(a => a.getAttribute('data-uri') === u).length",
            uris["broken"],
        )
        assert links == 0
        page.wait_for_timeout(4500)
        assert_nothing_ran(page)
        # the runs list shows the Prefect error as text
        assert page.inner_text("#runs tbody")
        page.screenshot(path=str(shots / "bravo.png"), full_page=True)

        # a browser without the cookie: the used link signs nobody in, an old ?token= URL
        # is stripped and ignored, and the form posts the token in a body, never a URL
        other = browser.new_context()
        page2 = other.new_page()
        watch(page2)
        page2.goto(dashboard.sign_in)
        assert page2.url == dashboard.url  # the query (?signin=expired) is dropped too
        page2.wait_for_selector("#signin", state="visible", timeout=30_000)
        assert "used already" in page2.inner_text("#signin")
        page2.goto(dashboard.url + "?token=" + dashboard.token)
        assert page2.url == dashboard.url
        page2.wait_for_selector("#signin", state="visible", timeout=30_000)
        page2.fill("#signin-token", "wrong")
        page2.click("#signin button[type=submit]")
        page2.wait_for_function(
            "() => document.getElementById('signin-note').className === 'err'", timeout=30_000
        )
        page2.fill("#signin-token", dashboard.token)
        page2.click("#signin button[type=submit]")
        page2.wait_for_selector("#signed-in", state="visible", timeout=30_000)
        assert page2.is_hidden("#signin")
        assert page2.input_value("#signin-token") == ""
        page2.click("#signout")
        page2.wait_for_selector("#signin", state="visible", timeout=30_000)
        assert_nothing_ran(page2)
        browser.close()
    token_urls = [u for u in requests if dashboard.token in u]
    # only the one deliberate old-style visit above carried it, and the server ignored it
    assert token_urls == [dashboard.url + "?token=" + dashboard.token], token_urls
    assert violations == [], violations  # the page itself needs nothing the policy refuses
    print(f"screenshots: {shots}")


def test_the_run_and_dataset_pages_show_payloads_as_text(dashboard: Dashboard) -> None:
    """The run page (progress, history, lease, shards) and the dataset page (metric names,
    judge columns, rejected reasons, models, rows, lineage) of hostile versions."""
    import json

    from playwright.sync_api import sync_playwright

    from .test_dashboard_pages import text_version

    uris = hostile_datasets(dashboard.root)
    hostile = text_version(
        dashboard.root, f"{IMG}/v-text", [3, 4, 5], 0.5,
        judge=SCRIPT, reason=f"keep: {IMG}", model=QUOTE, metric=TITLE,
    )  # fmt: skip
    running = Path(uris["running"])
    progress = json.loads((running / "_progress.json").read_text())
    progress.update(phase=IMG, message=SCRIPT, history=[
        {"t": time.time() - 2 + i, "rows_per_second": QUOTE if i else 1.0, "phase": TITLE}
        for i in range(3)
    ])  # fmt: skip
    (running / "_progress.json").write_text(json.dumps(progress))
    write_shard(open_store(str(running)), index=0, row_start=0, seed=1, max_rows=2,
                table=pa.table({"x": [1, 2]}), seconds=1.0, worker=SCRIPT)  # fmt: skip
    violations: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.on("dialog", lambda d: record_dialog(dialogs, d))
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(dashboard.sign_in)
        for path, uri, ready in (
            ("run", uris["running"], "#run-status"),
            ("run", uris["crashed"], "#run-status"),
            ("dataset", hostile, "body[data-loaded]"),
            ("dataset", uris["alpha"], "body[data-loaded]"),
        ):
            page.goto(f"{dashboard.url}{path}?uri={quote(uri, safe='')}")
            page.wait_for_selector(ready, timeout=30_000)
            page.wait_for_timeout(2500)  # a refresh of the run page
            body = page.inner_text("main")
            assert uri in body, (path, uri)
            assert page.evaluate("window.__pwned") is None
            assert page.title() == f"synthfactory · {path}"
            assert page.evaluate("document.scripts.length") == 3  # uPlot, common.js, the page's
            assert page.locator("img[src='x'], img[src$='/x']").count() == 0
            if uri == uris["running"]:
                assert IMG in body and SCRIPT in body  # phase, message
                assert SCRIPT in page.inner_text("#actors")  # the shard's worker
            if uri == hostile:
                assert f"keep: {IMG}" in body and QUOTE in page.inner_text("#cost")
                assert SCRIPT in page.inner_text("#judges") and TITLE in page.inner_text("#trend")
        browser.close()
    assert dialogs == [] and violations == [], (dialogs, violations)
    assert errors == []  # a run without history (older runs) draws empty charts, no error


def record_dialog(dialogs: list[str], dialog: Any) -> None:
    """A dialog opened (alert, confirm): a payload ran. Recorded and dismissed."""
    dialogs.append(dialog.message)
    dialog.dismiss()
