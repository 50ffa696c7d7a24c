"""Watching a text job in a real headless Chromium (Debian's): while the job runs against an
OpenAI-compatible server on loopback, the run page's charts of rows/s and tokens/s redraw
with new points; afterwards the dataset page shows the judge-score histograms, the rejected
rows with their reasons and, once a second version exists, a trend over versions.
Screenshots go to the test's tmp folder; with SYNTHFACTORY_SCREENSHOTS=DIR the run page's
and the dataset page's are copied there too (docs/screenshots for the README)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from .test_dashboard import CHROME_ARGS, CHROMIUM, dashboard, run

__all__ = ["dashboard"]  # the fixture, shared with the catalog's browser test

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed"
    ),
]

MODEL = "loopback-model"


class ChatServer(ThreadingHTTPServer):
    """An OpenAI-compatible chat server: plain text for text columns, a score per rubric
    criterion (from the request's seed) for judge columns; every answer takes ``delay``
    seconds and every ``throttle_every``-th request is answered 429 first (retried)."""

    daemon_threads = True

    def __init__(self, delay: float, throttle_every: int = 13) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.delay = delay
        self.throttle_every = throttle_every
        self.count = 0
        self.lock = threading.Lock()
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        with self.server.lock:
            self.server.count += 1
            throttled = self.server.count % self.server.throttle_every == 0
        if throttled:
            self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
            return
        time.sleep(self.server.delay)
        seed = int(request.get("seed", 0))
        schema = (request.get("response_format") or {}).get("json_schema", {}).get("schema")
        if schema:
            criteria = schema.get("properties", {})
            text = json.dumps(
                {
                    c: {"score": 1 + (seed >> i) % 5, "reason": "fine"}
                    for i, c in enumerate(criteria)
                }
            )
        else:
            text = f"Answer {seed % 1000}: " + "word " * (3 + seed % 9)
        prompt = request["messages"][-1]["content"]
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
        choice = {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": text},
        }
        body = {"id": "x", "object": "chat.completion", "model": MODEL, "usage": usage}
        self._send(200, {**body, "created": int(time.time()), "choices": [choice]})


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer(delay=0.3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def text_spec(path: Path, output: Path, base_url: str, seed: int, rows: int) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": "watched",
                "modality": "text",
                "rows": rows,
                "shard_rows": 4,
                "seed": seed,
                "output": str(output),
                "generator": {
                    "kind": "llm",
                    "model": MODEL,
                    "backend": {
                        "kind": "openai",
                        "base_url": base_url,
                        "max_concurrency": 2,
                        "price_per_million_tokens": {"prompt": 0.5, "completion": 1.5},
                    },
                    "columns": [
                        {
                            "kind": "choice",
                            "name": "topic",
                            "choices": {"cooking": 1, "travel": 1, "fitness": 1},
                        },
                        {"kind": "llm_text", "name": "answer", "template": "Tips on {{ topic }}?"},
                        {
                            "kind": "llm_judge",
                            "name": "judge",
                            "rubric": ["helpfulness"],
                            "template": "Q: tips on {{ topic }}\nA: {{ answer }}",
                        },
                    ],
                    "keep": "{{ judge.helpfulness.score >= 3 }}",
                    "dedup": {"exact": False, "near": False},
                },
                "top_up_rounds": 3,
                "resources": {"actors": 1, "num_cpus": 0.5, "batch_size": 4},
            }
        )
    )
    return path


def test_the_run_page_charts_a_text_job_live_and_the_dataset_page_shows_its_judgements(
    dashboard: tuple[str, Path, dict[str, str]], chat_server: ChatServer, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    url, root, env = dashboard
    shots = tmp_path / "screenshots"
    shots.mkdir()
    output = root / "watched"
    job = run(env, "run", str(text_spec(tmp_path / "a.yaml", output, chat_server.base_url, 1, 40)),
              "-q", wait=False)  # fmt: skip
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            # the running job's name links to its run page
            page.wait_for_selector("#running a.page-link", timeout=120_000)
            page.click("#running a.page-link")
            watch_live(page, job, shots)
            chat_server.delay = 0.02  # watched: the rest of the job need not take its time
            out, _ = job.communicate(timeout=300)
            assert job.returncode == 0, out
            # the finished run: its timeline, and the link to its dataset version
            page.wait_for_selector("a[data-role=dataset-link]", timeout=30_000)
            assert page.locator("#timeline .gantt-bar").count() >= 10
            # per actor: the job's one actor, its shards and its utilisation
            (actor,) = page.locator("#actors table.actors tbody tr").all()
            cells = actor.locator("td").all_inner_texts()
            assert int(cells[1]) >= 10 and 0 < float(cells[3].rstrip(" %")) <= 100, cells
            page.screenshot(path=str(shots / "run.png"), full_page=True)
            page.click("a[data-role=dataset-link]")
            check_dataset_page(page)
            # a second version of the same dataset: the page shows a trend over both
            second = text_spec(tmp_path / "b.yaml", output, chat_server.base_url, 2, 24)
            run(env, "run", str(second), "-q")
            page.reload()
            page.wait_for_selector("body[data-loaded]", timeout=60_000)
            assert page.get_attribute("#trend", "data-versions") == "2"
            trend = page.locator("#trend .chart[data-points='2']")
            assert trend.count() >= 1, page.inner_text("#trend")
            page.screenshot(path=str(shots / "dataset.png"), full_page=True)
            readme_pictures(page, url, shots)
            browser.close()
    finally:
        if job.poll() is None:
            job.terminate()
            job.wait(timeout=60)
    keep = os.environ.get("SYNTHFACTORY_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shots / "run-page.png", Path(keep) / "run-page.png")
        shutil.copy(shots / "dataset-page.png", Path(keep) / "dataset-page.png")
    print(f"screenshots: {shots}")


def watch_live(page: Any, job: Any, shots: Path) -> None:
    """On the run page of the running ``job``: the rows/s and tokens/s charts each redraw
    with data points, and with more of them, at least three times before the job ends."""
    page.wait_for_selector("#run-status", timeout=30_000)
    assert page.inner_text("#run-status") in ("starting", "running")
    seen: dict[str, list[int]] = {"#chart-rows": [], "#chart-tokens": []}
    while any(len({n for n in v if n > 0}) < 3 for v in seen.values()):
        assert job.poll() is None, "the job ended before three refreshes were charted"
        for box, points in seen.items():
            points.append(int(page.get_attribute(box, "data-points") or 0))
        page.wait_for_function(
            "n => Number(document.body.getAttribute('data-refreshes')) > n",
            arg=int(page.get_attribute("body", "data-refreshes") or 0),
            timeout=30_000,
        )
    assert page.locator("#chart-rows canvas").count() == 1
    assert "tokens/s" in page.inner_text("#chart-tokens")
    page.screenshot(path=str(shots / "run-live.png"), full_page=True)


def check_dataset_page(page: Any) -> None:
    """The dataset page of the finished text job: judge-score histogram, rejected rows with
    reasons, whole rows, cost per column, and the link back to the run."""
    page.wait_for_selector("body[data-loaded]", timeout=60_000)
    histogram = "#judges .chart[data-column='judge.helpfulness.score']"
    assert page.locator(f"{histogram} canvas").count() == 1
    assert int(page.get_attribute(histogram, "data-points") or 0) >= 3
    rejected = page.inner_text("#rejected")
    assert "keep" in rejected and "reason" in rejected.lower()
    assert page.locator("#rejected table.rejected-rows tbody tr").count() >= 1
    assert page.locator("#samples table tbody tr").count() == 10
    assert "answer" in page.inner_text("#cost")
    assert page.locator("a[data-role=run-link]").count() == 1


def readme_pictures(page: Any, url: str, shots: Path) -> None:
    """The README's pictures: the top of the run page and of the dataset page."""
    version = page_uri(page)
    page.set_viewport_size({"width": 1280, "height": 1100})
    page.goto(url + "run?" + urlencode({"uri": version}))
    page.wait_for_selector("#chart-rows canvas", timeout=30_000)
    page.screenshot(path=str(shots / "run-page.png"))
    page.set_viewport_size({"width": 1280, "height": 1500})
    page.goto(url + "dataset?" + urlencode({"uri": version}))
    page.wait_for_selector("body[data-loaded]", timeout=60_000)
    page.screenshot(path=str(shots / "dataset-page.png"))


def page_uri(page: Any) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(page.url).query).get("uri", [""])[0]
