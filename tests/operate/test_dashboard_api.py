"""The dashboard API without a browser: roots fence what can be read, actions need the token,
remote binding refuses to start without one; security headers on every response, a Host
allowlist, the token only in a header or an HttpOnly cookie (never the URL), same-origin
actions, 4xx for bad input; a broken manifest is reported and skipped, a dead run shows as
crashed."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient

from synthfactory.dataset import list_versions, open_dataset
from synthfactory.dataset.catalog import unfinished_status
from synthfactory.storage import open_store
from synthfactory_flows.cli import main
from synthfactory_flows.dashboard.app import create_app

from .builders import break_manifest, images, png, publish, unfinished, wait_for_first_shard

SEQUENCE = "synthfactory_workers.demo:SequenceGenerator"
BASE = "http://127.0.0.1:8765"
ORIGIN = {"Origin": BASE}
DASHBOARD = Path(__file__).parents[2] / "flows" / "synthfactory_flows" / "dashboard"


def client(roots: list[str], **kwargs: object) -> TestClient:
    return TestClient(create_app(roots, **kwargs), base_url=BASE)  # type: ignore[arg-type]


def test_actions_need_the_token_and_reads_stay_inside_roots(tmp_path: Path) -> None:
    c = client([str(tmp_path)], token="s3cret")
    assert c.get("/api/datasets").status_code == 200
    assert c.post("/api/runs/00000000-0000-0000-0000-000000000000/cancel").status_code == 401
    assert (
        c.post("/api/deployments/x/run", headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert c.get("/api/dataset", params={"uri": "/etc"}).status_code == 403
    assert c.get("/api/dataset", params={"uri": str(tmp_path / ".." / "x")}).status_code == 403
    assert c.get("/api/file", params={"uri": str(tmp_path), "key": "../secret"}).status_code == 403
    s3 = client(["s3://bucket/root"])
    for uri in ("s3://bucket/root/../other", "s3://bucket/rootx", "/etc", "s3://bucket/root/./x"):
        assert s3.get("/api/dataset", params={"uri": uri}).status_code == 403, uri


def test_remote_reads_need_the_token_which_is_never_read_from_the_url(tmp_path: Path) -> None:
    c = client([str(tmp_path)], token="s3cret", require_token_to_read=True)
    assert c.get("/api/datasets").status_code == 401
    assert c.get("/healthz").status_code == 200  # for probes: no token, no data
    assert c.get("/api/datasets", params={"token": "s3cret"}).status_code == 401
    assert c.get("/api/datasets", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/api/session").json() == {
        "signed_in": False,
        "read_needs_token": True,
        "actions": True,
        "can_sign_in": True,
    }
    # the page itself holds no data: it loads, and asks for the token
    assert c.get("/").status_code == 200
    # one sign-in: an HttpOnly, SameSite=Strict cookie, then reads need nothing in the URL
    assert c.post("/api/login", json={"token": "nope"}, headers=ORIGIN).status_code == 401
    login = c.post("/api/login", json={"token": "s3cret"}, headers=ORIGIN)
    assert login.status_code == 200
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "s3cret" not in cookie
    assert c.get("/api/datasets").status_code == 200
    assert c.get("/api/session").json()["signed_in"] is True
    # signing out ends the session on the server too
    session = c.cookies.get("synthfactory_session")
    assert c.post("/api/logout", headers=ORIGIN).status_code == 200
    c.cookies.set("synthfactory_session", session or "")
    assert c.get("/api/datasets").status_code == 401


def test_a_login_form_and_the_one_time_link_set_the_cookie(tmp_path: Path) -> None:
    app = create_app([str(tmp_path)], token="s3cret", require_token_to_read=True)
    form = TestClient(app, base_url=BASE)
    posted = form.post(
        "/api/login",
        content="token=s3cret",
        headers={"Content-Type": "application/x-www-form-urlencoded", **ORIGIN},
        follow_redirects=False,
    )
    assert posted.status_code == 303 and posted.headers["location"] == "/"
    assert form.get("/api/datasets").status_code == 200
    code = app.state.access.login_code
    assert code and code != "s3cret"
    link = TestClient(app, base_url=BASE)
    first = link.get("/login", params={"code": code}, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"  # no code kept
    assert "HttpOnly" in first.headers["set-cookie"]
    assert link.get("/api/datasets").status_code == 200
    # the link works once: used again (browser history, a proxy log) it signs nobody in
    again = TestClient(app, base_url=BASE)
    second = again.get("/login", params={"code": code}, follow_redirects=False)
    assert second.status_code == 303 and "set-cookie" not in second.headers
    assert again.get("/api/datasets").status_code == 401


def test_actions_by_cookie_must_come_from_the_dashboards_own_origin(tmp_path: Path) -> None:
    c = client([str(tmp_path)], token="s3cret")
    assert c.post("/api/login", json={"token": "s3cret"}, headers=ORIGIN).status_code == 200
    cancel = "/api/runs/not-a-uuid/cancel"
    # another port on localhost is same-site (SameSite cookies go there), not same-origin
    assert c.post(cancel, headers={"Origin": "http://127.0.0.1:9999"}).status_code == 403
    assert c.post(cancel, headers={"Origin": "null"}).status_code == 403
    assert c.post(cancel, headers={"Sec-Fetch-Site": "same-site", **ORIGIN}).status_code == 403
    assert c.post(cancel, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert c.post(cancel).status_code == 403  # a cookie and no origin at all
    # from the page itself it passes the check (and the run id is then looked at)
    assert c.post(cancel, headers=ORIGIN).status_code == 404
    assert c.post(cancel, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 404
    # a script with the token in its Authorization header cannot be forged by a page
    bare = client([str(tmp_path)], token="s3cret")
    assert bare.post(cancel, headers={"Authorization": "Bearer s3cret"}).status_code == 404
    # a cross-origin login attempt is refused too
    evil = {"Origin": "http://evil.example"}
    assert bare.post("/api/login", json={"token": "s3cret"}, headers=evil).status_code == 403


def test_security_headers_on_every_response(tmp_path: Path) -> None:
    c = client([str(tmp_path)], token="s3cret", require_token_to_read=True)
    responses = [
        c.get("/"),
        c.get("/static/page.js"),
        c.get("/static/page.css"),
        c.get("/api/session"),
        c.get("/api/datasets"),  # 401
        c.get("/api/thumbnail", params={"uri": str(tmp_path), "row": "x", "column": "c"}),  # 422
        c.get("/no-such-page"),
        c.get("/api/session", headers={"Host": "evil.example"}),  # 400
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 401, 422, 404, 400]
    for r in responses:
        csp = r.headers["content-security-policy"]
        for directive in (
            "default-src 'self'",
            "script-src 'self'",
            "img-src 'self' data:",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ):
            assert directive in csp, (r.url, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert responses[1].headers["content-type"].startswith("text/javascript")
    assert responses[4].json()["error"]  # errors are JSON with an "error"


def test_the_page_has_no_inline_script_and_builds_no_html_from_data() -> None:
    files = sorted(DASHBOARD.glob("*.html"))
    assert {f.name for f in files} >= {"shell.html", "page.html", "run.html", "dataset.html"}
    for file in files:
        html = file.read_text()
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == [], file.name
        assert re.findall(r"\son[a-z]+\s*=", html, flags=re.I) == [], file.name
        assert "<style" not in html and "style=" not in html, file.name
    script = (DASHBOARD / "page.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    assert 'setAttribute("on' not in script and ".onclick" not in script
    assert 'get("token")' not in script and "?token=" not in script


@pytest.mark.parametrize(
    "host,status",
    [
        ("127.0.0.1:8765", 200),
        ("localhost:8765", 200),
        ("[::1]:8765", 200),
        ("LOCALHOST", 200),
        ("dashboard.internal:8765", 200),  # --allowed-host
        ("attacker.example:8765", 400),  # DNS rebinding: a name that resolves to us
        ("127.0.0.1.nip.io", 400),
        ("10.1.2.3:8765", 400),  # bound to loopback: no other address is ours
        ("", 400),
        ("a:b:c", 400),
    ],
)
def test_the_host_header_must_be_an_allowed_name(tmp_path: Path, host: str, status: int) -> None:
    c = client([str(tmp_path)], allowed_hosts=["dashboard.internal"])
    r = c.get("/api/datasets", headers={"Host": host})
    assert r.status_code == status
    if status == 400:
        assert "--allowed-host" in r.json()["error"]
        assert r.headers["x-frame-options"] == "DENY"


def test_a_server_bound_to_every_interface_takes_ip_literals_but_no_other_names(
    tmp_path: Path,
) -> None:
    c = client([str(tmp_path)], token="t", host="0.0.0.0")
    assert c.get("/api/session", headers={"Host": "10.1.2.3:8765"}).status_code == 200
    assert c.get("/api/session", headers={"Host": "[fd00::5]:8765"}).status_code == 200
    assert c.get("/api/session", headers={"Host": "rebind.attacker.example"}).status_code == 400
    named = client([str(tmp_path)], token="t", host="10.9.9.9")
    assert named.get("/api/session", headers={"Host": "10.9.9.9:8765"}).status_code == 200
    assert named.get("/api/session", headers={"Host": "10.1.2.3:8765"}).status_code == 400


def _image_dataset(root: Path) -> str:
    table = pa.table(
        {
            "id": pa.array([0, 1, 2], pa.int64()),
            "score": pa.array([1.5, float("nan"), float("inf")]),
            "image": images([png(), b"this is not an image", None]),
        }
    )
    return publish(root, "pics/v-1", table, name="pics")


def test_bad_input_is_a_4xx_and_broken_files_a_502_never_a_traceback(tmp_path: Path) -> None:
    uri = _image_dataset(tmp_path)
    c = client([str(tmp_path)], token="s3cret")
    # a non-ASCII token, UTF-8 on the wire
    auth: dict[bytes, bytes] = {b"Authorization": b"Bearer s\xc3\xa4cret"}
    assert c.post("/api/runs/not-a-uuid/cancel", headers=auth).status_code == 401
    latin: dict[bytes, bytes] = {b"Authorization": b"Bearer \xff\xfe"}
    assert c.post("/api/runs/not-a-uuid/cancel", headers=latin).status_code == 401
    assert c.post("/api/login", json={"token": "säcret"}, headers=ORIGIN).status_code == 401
    assert c.post("/api/login", content=b'{"token": "\\ud800"}', headers=ORIGIN).status_code == 401
    assert c.post("/api/login", content=b"\xff{", headers=ORIGIN).status_code == 422
    token = {"Authorization": "Bearer s3cret"}
    for path in ("/api/runs/not-a-uuid/cancel", "/api/deployments/not-a-uuid/run"):
        r = c.post(path, headers=token)
        assert r.status_code == 404 and "not a UUID" in r.json()["error"], path
    # a non-ASCII token given to the server compares as bytes too
    utf8 = client([str(tmp_path)], token="säcret")
    assert utf8.post("/api/runs/x/cancel", headers=auth).status_code == 404
    thumb = "/api/thumbnail"
    ok = c.get(thumb, params={"uri": uri, "row": 0, "column": "image"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
    cases: list[tuple[dict[str, Any], int]] = [
        ({"uri": uri, "row": -1, "column": "image"}, 422),
        ({"uri": uri, "row": "x", "column": "image"}, 422),
        ({"uri": uri, "row": 3, "column": "image"}, 404),
        ({"uri": uri, "row": 10**6, "column": "image"}, 404),
        ({"uri": uri, "row": 10**12, "column": "image"}, 422),
        ({"uri": uri, "row": 0, "column": "nope"}, 404),
        ({"uri": uri, "row": 0, "column": "score"}, 404),
        ({"uri": uri, "row": 2, "column": "image"}, 404),  # an empty cell
        ({"uri": uri, "row": 1, "column": "image"}, 502),  # bytes that are not an image
        ({"uri": str(tmp_path / "nothing"), "row": 0, "column": "image"}, 404),
        ({"uri": "/etc", "row": 0, "column": "image"}, 403),
        ({"uri": uri + "\x00", "row": 0, "column": "image"}, 403),
        ({"row": 0, "column": "image"}, 422),
    ]
    for params, status in cases:
        r = c.get(thumb, params=params)
        assert r.status_code == status, (params, r.status_code, r.text)
        assert r.json()["error"], params
    for key, status in (("plots/nope.png", 404), ("data/part-00000.parquet", 403)):
        assert c.get("/api/file", params={"uri": uri, "key": key}).status_code == status
    assert c.get("/api/dataset", params={"uri": str(tmp_path / "nothing")}).status_code == 404
    # NaN and infinity in the data are still JSON
    detail = c.get("/api/dataset", params={"uri": uri})
    assert detail.status_code == 200
    assert [r["score"] for r in detail.json()["sample"]] == [1.5, "nan", "inf"]
    # a damaged shard: the manifest still shows, the sample says why it is missing
    shard = next(Path(uri).glob("data/*.parquet"))
    shard.write_bytes(shard.read_bytes()[:100])
    damaged = c.get("/api/dataset", params={"uri": uri})
    assert damaged.status_code == 200 and "cannot be read" in damaged.json()["sample_error"]
    r = c.get(thumb, params={"uri": uri, "row": 0, "column": "image"})
    assert r.status_code == 502 and r.json()["error"]


def test_a_broken_manifest_is_reported_and_skipped_not_fatal_to_its_neighbours(
    tmp_path: Path, ray_local: None, prefect_server: None
) -> None:
    """A real dataset made by a quick job, beside a version whose manifest was cut short."""
    out = tmp_path / "out"
    spec_file = tmp_path / "seq.yaml"
    spec = {
        "name": "seq",
        "modality": "tabular",
        "generator": {"kind": "python", "factory": SEQUENCE},
        "rows": 40,
        "shard_rows": 20,
        "output": str(out),
        "resources": {"actors": 1, "num_cpus": 0.5},
        "metrics": {"enabled": False},
    }
    spec_file.write_text(yaml.safe_dump(spec))
    runner = CliRunner()
    made = runner.invoke(main, ["run", str(spec_file), "-q"], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    (good,) = list_versions(open_store(str(out)))
    broken = break_manifest(out / good.prefix / "manifest.json", out / "v-zzz-broken")
    # the catalog: one broken row with its error, the good version untouched
    versions = {v.prefix: v for v in list_versions(open_store(str(out)))}
    assert versions["v-zzz-broken"].status == "broken"
    assert "not a readable manifest" in (versions["v-zzz-broken"].error or "")
    assert versions[good.prefix].status == "published"
    assert open_dataset(str(out)).uri == good.uri
    # the dashboard lists both; the broken one answers a JSON error, not a 500
    c = client([str(out)], token="t")
    rows = {r["uri"]: r for r in c.get("/api/datasets").json()["datasets"]}
    assert rows[str(broken)]["status"] == "broken" and rows[str(broken)]["error"]
    assert rows[str(broken)]["openable"] is False
    assert rows[good.uri]["status"] == "published" and rows[good.uri]["rows"] == 40
    r = c.get("/api/dataset", params={"uri": str(broken)})
    assert r.status_code == 502 and "not a readable manifest" in r.json()["error"]
    assert c.get("/api/dataset", params={"uri": str(out)}).json()["uri"] == good.uri
    # the CLI: a warning line, the broken row, the rest as before
    listed = runner.invoke(main, ["datasets", "ls", str(out)])
    assert listed.exit_code == 0, listed.output
    assert "warning: skipped a broken version" in listed.stderr
    assert re.search(r"^broken .*v-zzz-broken$", listed.stdout, flags=re.M), listed.stdout
    assert re.search(rf"^published .*{good.prefix}$", listed.stdout, flags=re.M)
    shown = runner.invoke(main, ["datasets", "show", str(out), "-n", "2"])
    assert shown.exit_code == 0 and good.uri in shown.stdout, shown.output
    assert "warning: skipped a broken version" in shown.stderr
    # a broken version opened by its own URI is a user error (exit 2), not a traceback
    direct = runner.invoke(main, ["datasets", "show", str(broken)])
    assert direct.exit_code == 2 and "not a readable manifest" in direct.stderr
    # another job into the same root runs and summarises as usual
    spec_file.write_text(yaml.safe_dump({**spec, "name": "seq2", "rows": 20}))
    again = runner.invoke(main, ["run", str(spec_file), "-q"], catch_exceptions=False)
    assert again.exit_code == 0 and "status: published" in again.output, again.output


def test_dead_runs_show_as_crashed_not_running_forever(tmp_path: Path) -> None:
    root = tmp_path / "out"
    unfinished(root, "v-live", lease_expires_in=60)
    unfinished(root, "v-live-quiet", lease_expires_in=60, progress_age=600)  # evaluating long
    unfinished(root, "v-dead", lease_expires_in=-5, host="gpu-7")
    unfinished(root, "v-dead-evaluating", state="evaluating", lease_expires_in=-1)
    unfinished(root, "v-old-writer", progress_age=600)  # a job from before leases
    unfinished(root, "v-fresh", progress_age=1)
    unfinished(root, "v-torn-lease", lease_text='{"owner": "run-', progress_age=1)
    unfinished(root, "v-failed", state="failed", progress_age=600)
    statuses = {v.prefix: v.status for v in list_versions(open_store(str(root)))}
    assert statuses == {
        "v-live": "running",
        "v-live-quiet": "running",
        "v-dead": "crashed",
        "v-dead-evaluating": "crashed",
        "v-old-writer": "stale",
        "v-fresh": "running",
        "v-torn-lease": "running",
        "v-failed": "failed",
    }
    rows = {
        Path(r["uri"]).name: r for r in client([str(root)]).get("/api/datasets").json()["datasets"]
    }
    assert rows["v-dead"]["status"] == "crashed" and rows["v-dead"]["lease"]["host"] == "gpu-7"
    assert rows["v-old-writer"]["status"] == "stale" and rows["v-live"]["status"] == "running"
    listed = CliRunner().invoke(main, ["datasets", "ls", str(root)])
    assert re.search(r"^crashed .*v-dead$", listed.stdout, flags=re.M), listed.stdout
    # the rule on its own
    now = time.time()
    fresh = {"state": "running", "updated_at": now}
    assert unfinished_status(fresh, None, now) == "running"
    assert unfinished_status(fresh, {"expires_at": now - 1}, now) == "crashed"
    assert unfinished_status(None, {"expires_at": now + 30}, now) == "running"
    assert unfinished_status({"state": "completed", "updated_at": now}, None, now) == "incomplete"
    assert unfinished_status({"state": "running"}, None, now) == "stale"  # no time at all
    assert unfinished_status(fresh, {"expires_at": "soon"}, now) == "running"
    assert unfinished_status(None, None, now) == "incomplete"


def test_a_killed_run_shows_as_crashed_once_its_lease_expires(tmp_path: Path) -> None:
    """A real `synthfactory run`, killed (SIGKILL, whole process group) after its first
    shards: running while its lease is live, crashed once the lease has expired."""
    import os
    import signal

    out = tmp_path / "out"
    spec_file = tmp_path / "slow.yaml"
    spec = {
        "name": "slow",
        "modality": "tabular",
        "generator": {"kind": "python", "factory": SEQUENCE, "options": {"sleep_seconds": 0.5}},
        "rows": 2000,
        "shard_rows": 100,
        "output": str(out),
        "resources": {"actors": 1, "num_cpus": 0.5},
    }
    spec_file.write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PREFECT_API_URL")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), SYNTHFACTORY_LEASE_TTL_S="6")
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthfactory_flows.cli", "run", str(spec_file), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        wait_for_first_shard(proc, out)
        (alive,) = list_versions(open_store(str(out)))
        assert alive.status == "running" and alive.lease is not None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    (version,) = list_versions(open_store(str(out)))
    assert version.manifest is None and version.lease is not None
    time.sleep(max(0.0, float(version.lease["expires_at"]) - time.time()) + 0.5)
    (dead,) = list_versions(open_store(str(out)))
    assert dead.status == "crashed"
    rows = client([str(out)]).get("/api/datasets").json()["datasets"]
    assert [r["status"] for r in rows] == ["crashed"]
    assert rows[0]["lease"]["pid"] and rows[0]["lease"]["host"]
    listed = CliRunner().invoke(main, ["datasets", "ls", str(out)])
    assert listed.stdout.splitlines()[1].startswith("crashed "), listed.stdout


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
