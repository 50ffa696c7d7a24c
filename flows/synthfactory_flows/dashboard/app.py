"""The dashboard's HTTP API and page (FastAPI). Read-only, except the actions you expose,
which need the access token. State comes from manifests and Prefect's API: nothing of its
own to drift out of sync.

Security model (the dashboard runs on loopback by default, beside a browser that visits
other sites):

- every response carries a strict Content-Security-Policy (scripts and styles only from
  this server, no inline script), ``nosniff``, ``X-Frame-Options: DENY`` and
  ``Referrer-Policy: no-referrer``; the page builds its DOM with ``textContent``;
- a request whose ``Host`` is not one of the allowed names gets 400 (DNS rebinding);
- the access token travels in an ``Authorization: Bearer`` header, or is exchanged once
  (``POST /api/login``, or the one-time sign-in link ``serve`` prints) for an HttpOnly,
  SameSite=Strict session cookie; it is never read from the URL;
- state-changing requests (POST) must come from this origin (``Origin`` /
  ``Sec-Fetch-Site``) unless they carry the token in their ``Authorization`` header;
- bad input is a 4xx and a broken stored file a 502, both with a JSON ``error``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from synthfactory.dataset.catalog import BrokenManifestError
from synthfactory.errors import ConfigError
from synthfactory.storage import inside
from synthfactory_flows.dashboard import catalog as cat
from synthfactory_flows.dashboard import dataset_view, run_view
from synthfactory_flows.dashboard.security import (
    COOKIE,
    WILDCARD_HOSTS,
    Access,
    Guard,
    allowed_host_names,
    normal_host,
    same_origin,
)

HERE = Path(__file__).parent
PAGE = HERE / "page.html"
#: the pages (the catalog, one run, one dataset); their data comes from the API
PAGES = {"/": "page.html", "/run": "run.html", "/dataset": "dataset.html"}
JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
#: the pages' scripts and style, served from files: the policy allows no inline script
STATIC = {
    "page.js": JS,
    "page.css": CSS,
    "common.js": JS,
    "run.js": JS,
    "dataset.js": JS,
}
#: vendored libraries (vendor/README.md: versions, licences, checksums), same origin
VENDOR = {
    "uPlot.iife.min.js": JS,
    "uPlot.min.css": CSS,
    "uPlot.LICENSE": "text/plain; charset=utf-8",
}


def prefect_ui_url() -> str | None:
    api = os.environ.get("PREFECT_API_URL")
    return api.removesuffix("/").removesuffix("/api") if api else None


async def recent_runs(limit: int = 25) -> list[dict[str, Any]]:
    if not os.environ.get("PREFECT_API_URL"):
        return []
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    ui = prefect_ui_url()
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["synthfactory-generate"])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=limit,
        )
    return [
        {
            "id": str(r.id),
            "name": r.name,
            "state": r.state_name,
            "start_time": r.start_time.isoformat() if r.start_time else None,
            "expected_start_time": r.expected_start_time.isoformat()
            if r.expected_start_time
            else None,
            "deployment_id": str(r.deployment_id) if r.deployment_id else None,
            "url": f"{ui}/runs/flow-run/{r.id}" if ui else None,
        }
        for r in runs
    ]


def create_app(
    roots: list[str],
    token: str | None = None,
    require_token_to_read: bool = False,
    actions: bool = True,
    *,
    host: str = "127.0.0.1",
    allowed_hosts: Iterable[str] = (),
) -> FastAPI:
    """The dashboard over ``roots``. ``host``: the address it is bound to (allowed in Host
    headers, with loopback names and ``allowed_hosts``). ``app.state.access.login_code``
    is the one-time sign-in code ``serve`` prints as a link."""
    app = FastAPI(title="synthfactory dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    access = Access(token)
    app.state.access = access
    hosts = allowed_host_names(host, allowed_hosts)
    app.add_middleware(Guard, hosts=hosts, any_ip=normal_host(host) in WILDCARD_HOSTS)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return JSONResponse(
            {"error": str(exc.detail), "detail": exc.detail},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return JSONResponse(
            {"error": f"bad request: {problems}", "detail": jsonable_encoder(exc.errors())},
            status_code=422,
        )

    def check(request: Request, needed: bool) -> None:
        if needed and access.how(request) is None:
            raise HTTPException(status_code=401, detail="a valid access token is required")

    def check_action(request: Request) -> None:
        how = access.how(request)
        if how is None:
            raise HTTPException(status_code=401, detail="a valid access token is required")
        if how == "cookie" and not same_origin(request):
            raise HTTPException(403, "cross-origin request refused")
        if not actions:
            raise HTTPException(403, "actions are disabled")

    def check_inside(uri: str) -> None:
        if not inside(uri, roots):
            raise HTTPException(403, "that dataset is outside the dashboard's roots")

    def page(request: Request) -> HTMLResponse:
        # no data in the pages themselves: their scripts ask the API, which checks the token
        return HTMLResponse((HERE / PAGES[request.url.path]).read_text())

    for path in PAGES:
        app.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, "no such file")
        return Response((HERE / name).read_bytes(), media_type=STATIC[name])

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """For probes: no token, no data."""
        return JSONResponse({"ok": True})

    @app.get("/api/session")
    def session(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "signed_in": access.how(request) is not None,
                "read_needs_token": require_token_to_read,
                "actions": actions,
                "can_sign_in": token is not None,
            }
        )

    @app.post("/api/login")
    async def login(request: Request) -> Response:
        """Exchange the token (JSON ``{"token": ...}`` or a form field) for a session
        cookie. A browser form gets a redirect to the page, a script JSON."""
        if not same_origin(request) and (
            "origin" in request.headers or "sec-fetch-site" in request.headers
        ):
            raise HTTPException(403, "cross-origin request refused")
        body = await request.body()
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        given: bytes | None = None
        try:
            if kind == "application/x-www-form-urlencoded":
                form = parse_qs(body.decode("utf-8", "surrogateescape"), max_num_fields=10)
                values = form.get("token") or [""]
                given = values[0].encode("utf-8", "surrogateescape")
            else:
                data = json.loads(body)
                if isinstance(data, dict) and isinstance(data.get("token"), str):
                    given = data["token"].encode("utf-8", "surrogatepass")
        except ValueError:
            given = None
        if given is None:
            raise HTTPException(422, 'send {"token": "..."} as JSON or a form field "token"')
        if not access.token_matches(given):
            raise HTTPException(401, "that is not the access token")
        response: Response
        if kind == "application/x-www-form-urlencoded":
            response = RedirectResponse("/", status_code=303)
        else:
            response = JSONResponse({"signed_in": True})
        return _with_session(request, response, access)

    @app.get("/login")
    def login_link(request: Request, code: str = "") -> Response:
        """The one-time sign-in link ``serve`` prints: sets the session cookie and sends the
        browser on to the page, so no credential stays in its address bar or history."""
        if not access.use_login_code(code):
            return RedirectResponse("/?signin=expired", status_code=303)
        return _with_session(request, RedirectResponse("/", status_code=303), access)

    @app.post("/api/logout")
    def logout(request: Request) -> JSONResponse:
        if not same_origin(request) and "authorization" not in request.headers:
            raise HTTPException(403, "cross-origin request refused")
        session = request.cookies.get(COOKIE)
        if session:
            access.close_session(session)
        response = JSONResponse({"signed_in": False})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @app.get("/api/datasets")
    def datasets(request: Request) -> JSONResponse:
        check(request, require_token_to_read)
        rows = cat.catalog(roots)
        ui = prefect_ui_url()
        for row in rows:
            if ui and row.get("flow_run_id"):
                row["prefect_url"] = f"{ui}/runs/flow-run/{row['flow_run_id']}"
        return JSONResponse(cat.finite({"roots": roots, "datasets": rows, "actions": actions}))

    @app.get("/api/dataset")
    def dataset(request: Request, uri: str) -> JSONResponse:
        check(request, require_token_to_read)
        check_inside(uri)
        try:
            return JSONResponse(cat.detail(uri))
        except BrokenManifestError as exc:
            return JSONResponse({"uri": uri, "error": str(exc)}, status_code=502)
        except (ConfigError, FileNotFoundError) as exc:
            return JSONResponse({"uri": uri, "error": str(exc)}, status_code=404)
        except Exception as exc:  # storage or decode errors: the data, not the request
            return JSONResponse({"uri": uri, "error": str(exc)}, status_code=502)

    def may_read(request: Request, uri: str) -> None:
        check(request, require_token_to_read)
        check_inside(uri)

    _watch_routes(app, may_read, roots)

    @app.get("/api/thumbnail")
    def thumbnail(
        request: Request, uri: str, column: str, row: int = Query(ge=0, le=1_000_000)
    ) -> Response:
        check(request, require_token_to_read)
        check_inside(uri)
        try:
            return Response(cat.thumbnail(uri, row, column), media_type="image/png")
        except (cat.NotFound, FileNotFoundError) as exc:
            raise HTTPException(404, str(exc)) from None
        except BrokenManifestError as exc:
            raise HTTPException(502, str(exc)) from None
        except ConfigError as exc:
            raise HTTPException(404, str(exc)) from None
        except cat.Unreadable as exc:
            raise HTTPException(502, str(exc)) from None

    @app.get("/api/file")
    def dataset_file(request: Request, uri: str, key: str) -> Response:
        check(request, require_token_to_read)
        check_inside(uri)
        try:
            data, media = cat.dataset_file(uri, key)
        except PermissionError:
            raise HTTPException(403, "only plots and the dataset card are served") from None
        except FileNotFoundError:
            raise HTTPException(404, "no such file") from None
        except ConfigError as exc:
            raise HTTPException(404, str(exc)) from None
        except Exception as exc:  # storage errors
            raise HTTPException(502, f"the file cannot be read: {exc}") from None
        return Response(data, media_type=media)

    @app.get("/api/runs")
    async def runs(request: Request) -> JSONResponse:
        check(request, require_token_to_read)
        try:
            return JSONResponse({"runs": await recent_runs(), "prefect_ui": prefect_ui_url()})
        except Exception as exc:
            return JSONResponse({"runs": [], "error": str(exc)})

    @app.post("/api/runs/{run_id}/cancel")
    async def cancel(request: Request, run_id: str) -> JSONResponse:
        check_action(request)
        flow_run = _uuid(run_id, "flow run")
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound
        from prefect.states import Cancelling

        _require_prefect()
        try:
            async with get_client() as client:
                await client.set_flow_run_state(flow_run, Cancelling(), force=True)
        except ObjectNotFound:
            raise HTTPException(404, f"no flow run {flow_run}") from None
        except Exception as exc:
            raise HTTPException(502, f"Prefect refused: {exc}") from None
        return JSONResponse({"cancelled": str(flow_run)})

    @app.post("/api/deployments/{deployment_id}/run")
    async def rerun(request: Request, deployment_id: str) -> JSONResponse:
        check_action(request)
        deployment = _uuid(deployment_id, "deployment")
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        _require_prefect()
        try:
            async with get_client() as client:
                run = await client.create_flow_run_from_deployment(deployment)
        except ObjectNotFound:
            raise HTTPException(404, f"no deployment {deployment}") from None
        except Exception as exc:
            raise HTTPException(502, f"Prefect refused: {exc}") from None
        return JSONResponse({"flow_run_id": str(run.id)})

    return app


def _watch_routes(app: FastAPI, may_read: Callable[[Request, str], None], roots: list[str]) -> None:
    """The run page's and the dataset page's API, and the vendored chart library.
    ``may_read(request, uri)`` raises unless the request may read ``uri``."""

    @app.get("/static/vendor/{name}")
    def vendored(name: str) -> Response:
        if name not in VENDOR:
            raise HTTPException(404, "no such file")
        return Response((HERE / "vendor" / name).read_bytes(), media_type=VENDOR[name])

    @app.get("/api/run")
    def run(request: Request, uri: str) -> JSONResponse:
        """One version's run: progress with its sampled history, shard timeline, state."""
        may_read(request, uri)

        def answer() -> dict[str, Any]:
            body = run_view.run_detail(uri)
            ui = prefect_ui_url()
            if ui and body.get("flow_run_id"):
                body["prefect_url"] = f"{ui}/runs/flow-run/{body['flow_run_id']}"
            return dict(cat.finite(body))

        return _read(uri, answer)

    @app.get("/api/dataset/overview")
    def overview(request: Request, uri: str) -> JSONResponse:
        """Metrics over versions, gates, judge scores, rejected rows, cost, lineage."""
        may_read(request, uri)
        return _read(uri, lambda: dataset_view.overview(uri, lambda u: inside(u, roots)))

    @app.get("/api/dataset/rows")
    def dataset_rows(
        request: Request,
        uri: str,
        offset: int = Query(0, ge=0, le=10_000_000),
        limit: int = Query(10, ge=1, le=dataset_view.MAX_PAGE),
    ) -> JSONResponse:
        """Whole rows for the sample browser, a page at a time."""
        may_read(request, uri)
        return _read(uri, lambda: dataset_view.rows_page(uri, offset, limit))


def _read(uri: str, answer: Callable[[], dict[str, Any]]) -> JSONResponse:
    """``answer()`` as JSON; a missing version is a 404, a broken one a 502."""
    try:
        return JSONResponse(answer())
    except BrokenManifestError as exc:
        return JSONResponse({"uri": uri, "error": str(exc)}, status_code=502)
    except (ConfigError, FileNotFoundError) as exc:
        return JSONResponse({"uri": uri, "error": str(exc)}, status_code=404)
    except Exception as exc:  # storage or decode errors: the data, not the request
        return JSONResponse({"uri": uri, "error": str(exc)}, status_code=502)


def _with_session(request: Request, response: Response, access: Access) -> Response:
    response.set_cookie(
        COOKIE,
        access.open_session(),
        max_age=int(access.session_seconds),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise HTTPException(404, f"no {what} {value!r} (not a UUID)") from None


def _require_prefect() -> None:
    if not os.environ.get("PREFECT_API_URL"):
        raise HTTPException(503, "no Prefect server is configured (PREFECT_API_URL)")
