"""The run page and the dataset page without a browser: the progress writer keeps a bounded
history, ``/api/run`` serves it with the shard timeline, ``/api/dataset/overview`` the trend
over versions, judge-score histograms, validator pass rates, rejected rows with reasons and
cost per column and model; whole rows page by page; the pages and the vendored chart
library are served from this origin under the strict policy."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from fastapi.testclient import TestClient

from synthfactory.dataset import DatasetVersion, write_shard
from synthfactory.dataset.manifest import Manifest, SchemaInfo
from synthfactory.storage import open_store
from synthfactory_flows.dashboard.app import create_app
from synthfactory_flows.dashboard.pages import VENDOR
from synthfactory_flows.dashboard.security import CSP
from synthfactory_flows.progress import HISTORY_SAMPLES, Progress, Snapshot

from .builders import images, png

BASE = "http://127.0.0.1:8765"
DASHBOARD = Path(__file__).parents[2] / "flows" / "synthfactory_flows" / "dashboard"
SPEC_COLUMNS = [
    {"kind": "llm_text", "name": "answer", "template": "{{ q }}"},
    {"kind": "llm_judge", "name": "judge", "template": "{{ answer }}", "model": "big"},
]
PRICES = {"prompt": 2.0, "completion": 10.0}


def client(roots: list[str]) -> TestClient:
    return TestClient(create_app(roots), base_url=BASE)


def text_tables(
    scores: list[int], judge: str, reason: str, model: str
) -> tuple[pa.Table, pa.Table]:
    """Kept rows (judge scores, per-column token counts and models) and two rejected rows
    (one with ``reason``)."""
    n = len(scores)
    kept = pa.table(
        {
            "answer": [f"answer {i}" for i in range(n)],
            f"{judge}.helpfulness.score": pa.array(scores, pa.int64()),
            "answer__prompt_tokens": [10] * n,
            "answer__completion_tokens": [20] * n,
            "answer__model": ["small-model"] * n,
            "judge__prompt_tokens": [30] * n,
            "judge__completion_tokens": [5] * n,
            "judge__model": [model] * n,
        }
    )
    rejected = pa.table(
        {
            "answer": ["too short", "x"],
            f"{judge}.helpfulness.score": pa.array([1, None], pa.int64()),
            "answer__prompt_tokens": [10, 10],
            "answer__completion_tokens": [2, 1],
            "answer__model": ["small-model"] * 2,
            "judge__prompt_tokens": [30, 0],
            "judge__completion_tokens": [5, 0],
            "judge__model": [model, ""],
            "reason": [reason, "filter_min_chars: 1 < 10"],
            "rejected_column": ["keep", "answer"],
        }
    )
    return kept, rejected


def text_version(
    root: Path,
    prefix: str,
    scores: list[int],
    quality: float,
    *,
    judge: str = "judge",
    reason: str = "keep: expression was false",
    model: str = "big-model",
    metric: str = "overall",
    status: str = "published",
) -> str:
    """A committed text version (``text_tables``) with validator stats and a metrics.json."""
    kept, rejected = text_tables(scores, judge, reason, model)
    version = DatasetVersion(open_store(str(root)), prefix)
    spec = {
        "name": "qa",
        "output": str(root),
        "generator": {
            "kind": "llm",
            "backend": {"kind": "openai", "price_per_million_tokens": PRICES},
            "models": {"big": {"model": "big", "backend": {"kind": "openai"}}},
            "columns": SPEC_COLUMNS,
        },
    }
    version.claim(spec, f"hash-{prefix}")
    entry = write_shard(
        version.store, index=0, row_start=0, seed=1, max_rows=len(kept), table=kept,
        rejected=rejected,
    )  # fmt: skip
    stats = {"cost_usd": 0.5, "validate.code.checked": 8.0, "validate.code.passed": 6.0}
    gate = {"metric": "quality.overall", "condition": ">= 0.5", "passed": True}
    manifest = Manifest.model_validate(
        {"name": "qa", "version": prefix.rsplit("/", 1)[-1], "modality": "text",
         "rows": len(kept), "target_rows": len(kept), "rejected_rows": 2,
         "shards": [entry.model_dump()], "schema": SchemaInfo.from_arrow(kept.schema).model_dump(),
         "spec": spec, "spec_hash": f"hash-{prefix}", "stats": stats, "status": status,
         "gates": [gate]}
    )  # fmt: skip
    report = {"quality": {metric: quality}, "privacy": {"exact_copy_rate": 0.0}}
    version.store.put_text("metrics.json", json.dumps(report))
    version.publish(manifest)
    return version.uri


def test_the_progress_writer_keeps_a_bounded_history() -> None:
    written: list[dict[str, Any]] = []
    now = [1000.0]
    progress = Progress(
        Snapshot(name="n", version="v", uri="u", target_rows=10**6, shards_total=10),
        sink=written.append,
        interval=0.0,
        clock=lambda: now[0],
    )
    progress.update(state="running", force=True)
    for i in range(HISTORY_SAMPLES * 3):
        now[0] += 1.0
        progress.shard_done(5, {"completion_tokens": 50.0, "http_429": 1.0, "http_retries": 2.0})
        progress.update(force=True, actors_busy=i % 3)
    history = written[-1]["history"]
    assert HISTORY_SAMPLES // 2 <= len(history) <= HISTORY_SAMPLES
    times = [s["t"] for s in history]
    assert times == sorted(times) and times[-1] == now[0]
    assert times[0] <= 1000.0 + HISTORY_SAMPLES  # thinned, not cut: the start stays covered
    last = history[-1]
    assert last["http_429"] == HISTORY_SAMPLES * 3 and last["http_retries"] == 2 * last["http_429"]
    assert last["rows_generated"] == 5 * HISTORY_SAMPLES * 3
    assert last["completion_tokens"] == 50 * HISTORY_SAMPLES * 3
    assert written[-1]["requests"]["http_429"] == HISTORY_SAMPLES * 3
    assert len(json.dumps(written[-1])) < 200_000  # rewritten every second: kept small


def test_the_run_api_serves_the_history_and_the_shard_timeline(tmp_path: Path) -> None:
    root = tmp_path / "data"
    version = DatasetVersion(open_store(str(root)), "job/v-live")
    version.claim({"name": "job"}, "h")
    table = pa.table({"x": list(range(4))})
    for index in range(3):
        write_shard(
            version.store, index=index, row_start=4 * index, seed=index, max_rows=4,
            table=table, seconds=1.5, worker="actor-1",
        )  # fmt: skip
    now = time.time()
    history = [
        {"t": now - 3 + i, "rows_per_second": 10.0 + i, "tokens_per_second": 5.0} for i in range(3)
    ]
    progress = {"name": "job", "version": "v-live", "state": "running", "updated_at": now}
    version.write_progress({**progress, "target_rows": 100, "history": history})
    lease = {"owner": "run-1", "host": "h", "pid": 1, "expires_at": now + 600}
    version.store.put_text("_lease.json", json.dumps(lease))
    api = client([str(root)])
    body = api.get("/api/run", params={"uri": version.uri}).json()
    assert body["status"] == "running" and body["name"] == "job"
    assert [s["rows_per_second"] for s in body["history"]] == [10.0, 11.0, 12.0]
    assert "history" not in body["progress"]
    assert [s["index"] for s in body["shards"]] == [0, 1, 2]
    assert all(s["end"] - s["start"] == 1.5 and s["worker"] == "actor-1" for s in body["shards"])
    assert body["dataset_page"] is None  # not committed yet
    # the catalog, polled every two seconds, leaves the history out
    (row,) = api.get("/api/datasets").json()["datasets"]
    assert row["status"] == "running" and "history" not in row["progress"]
    assert api.get("/api/run", params={"uri": str(root / "nothing")}).status_code == 404
    assert api.get("/api/run", params={"uri": str(tmp_path)}).status_code == 403


def test_the_dataset_overview_trend_judges_rejected_rows_and_cost(tmp_path: Path) -> None:
    root = tmp_path / "data"
    first = text_version(root, "qa/v-1", [3, 4, 4, 5], quality=0.6)
    time.sleep(0.01)  # created_at orders the versions
    second = text_version(root, "qa/v-2", [5, 5, 4, 2, 5], quality=0.8)
    api = client([str(root)])
    o = api.get("/api/dataset/overview", params={"uri": second}).json()
    assert o["run_page"].startswith("/run?uri=")
    trend = o["trend"]
    assert [v["version"] for v in trend["versions"]] == ["v-1", "v-2"]
    assert trend["metrics"]["quality.overall"] == [0.6, 0.8]
    assert next(iter(trend["metrics"])) == "quality.overall"  # the gated metric first
    (judge,) = o["judges"]
    assert judge["column"] == "judge.helpfulness.score"
    assert dict(zip(judge["scores"], judge["kept"], strict=True)) == {1: 0, 2: 1, 3: 0, 4: 1, 5: 3}
    assert dict(zip(judge["scores"], judge["rejected"], strict=True))[1] == 1
    assert abs(judge["mean_kept"] - 21 / 5) < 1e-9
    assert o["validators"] == [{"name": "code", "checked": 8.0, "passed": 6.0, "rate": 0.75}]
    rejected = o["rejected"]
    assert rejected["total"] == 2 and len(rejected["rows"]) == 2
    assert {r["reason"] for r in rejected["by_reason"]} == {"keep", "filter_min_chars"}
    assert rejected["rows"][0]["reason"] == "keep: expression was false"
    assert all("__" not in k for r in rejected["rows"] for k in r)  # lineage columns left out
    cost = {c["column"]: c for c in o["cost"]["columns"]}
    assert cost["answer"]["prompt_tokens"] == 10 * 7 and cost["answer"]["model"] == "small-model"
    answer_usd = (70 * PRICES["prompt"] + (20 * 5 + 3) * PRICES["completion"]) / 1e6
    assert abs(cost["answer"]["cost_usd"] - answer_usd) < 1e-12
    assert cost["judge"]["cost_usd"] is None  # its model's backend sets no prices
    assert o["cost"]["totals"]["cost_usd"] == 0.5
    models = {m["model"]: m for m in o["cost"]["models"]}
    assert models["big-model"]["prompt_tokens"] == 30 * 6
    # the older version's trend is the same series
    older = api.get("/api/dataset/overview", params={"uri": first}).json()
    assert older["trend"]["metrics"]["quality.overall"] == [0.6, 0.8]
    # a quarantined version is in the trend, and its own page shows its published siblings
    time.sleep(0.01)
    held = text_version(root, "qa/_quarantine/v-3", [1, 2], quality=0.3, status="quarantined")
    for uri in (held, first):
        trend = api.get("/api/dataset/overview", params={"uri": uri}).json()["trend"]
        assert [v["status"] for v in trend["versions"]] == ["published"] * 2 + ["quarantined"]
        assert trend["metrics"]["quality.overall"] == [0.6, 0.8, 0.3]


def test_the_row_browser_pages_whole_rows_with_thumbnails(tmp_path: Path) -> None:
    root = tmp_path / "data"
    version = DatasetVersion(open_store(str(root)), "pics/v-1")
    version.claim({"name": "pics"}, "h")
    entries = []
    for index in range(3):
        table = pa.table(
            {"id": list(range(4 * index, 4 * index + 4)), "long": ["y" * 5000] * 4,
             "image": images([png((40 * index, 0, 0))] * 4)}
        )  # fmt: skip
        entries.append(
            write_shard(version.store, index=index, row_start=4 * index, seed=index, max_rows=4,
                        table=table).model_dump()
        )  # fmt: skip
    manifest = Manifest.model_validate(
        {"name": "pics", "version": "v-1", "modality": "image", "rows": 12, "shards": entries,
         "schema": SchemaInfo.from_arrow(table.schema).model_dump(), "spec": {"name": "pics"},
         "spec_hash": "h"}
    )  # fmt: skip
    version.publish(manifest)
    api = client([str(root)])
    page = api.get("/api/dataset/rows", params={"uri": version.uri, "offset": 3, "limit": 6})
    body = page.json()
    assert body["total"] == 12 and [r["id"] for r in body["rows"]] == [3, 4, 5, 6, 7, 8]
    assert len(body["rows"][0]["long"]) > 300  # whole rows: long texts are not cut at 300
    thumb = body["rows"][2]["image"]["thumbnail"]
    assert "row=5" in thumb
    assert api.get(thumb).headers["content-type"] == "image/png"
    assert (
        api.get("/api/dataset/rows", params={"uri": version.uri, "limit": 500}).status_code == 422
    )


def test_the_pages_and_the_vendored_chart_library_are_served_same_origin() -> None:
    api = TestClient(create_app([]), base_url=BASE)
    for path in ("/", "/run", "/dataset"):
        response = api.get(path, params={"uri": "x"})
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == CSP
        html = response.text
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
        assert re.findall(r"\son[a-z]+\s*=", html, flags=re.I) == []
        assert "<style" not in html and "style=" not in html
        for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            assert api.get(src).status_code == 200, src
        assert "//" not in "".join(re.findall(r'src="([^"]+)"', html))  # no CDN
    assert "script-src 'self'" in CSP and "unsafe" not in CSP
    readme = (DASHBOARD / "vendor" / "README.md").read_text()
    assert "uPlot 1.6.32 (MIT" in readme
    for name, media in VENDOR.items():
        response = api.get(f"/static/vendor/{name}")
        assert response.status_code == 200 and response.headers["content-type"] == media
        if name.endswith((".js", ".css")):
            assert hashlib.sha256(response.content).hexdigest() in readme, name
    assert "Permission is hereby granted" in api.get("/static/vendor/uPlot.LICENSE").text
    assert api.get("/static/vendor/../app.py").status_code == 404
    assert api.get("/static/vendor/README.md").status_code == 404
    for script in ("common.js", "run.js", "dataset.js", "page.js"):
        code = (DASHBOARD / script).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code, (script, sink)
        assert 'setAttribute("on' not in code and ".onclick" not in code
