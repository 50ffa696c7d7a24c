"""The dashboard's HTTP API and page (FastAPI). Read-only, except the actions you expose,
which need the access token. State comes from manifests and Prefect's API: nothing of its
own to drift out of sync."""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from synthfactory_flows.dashboard import catalog as cat

PAGE = Path(__file__).with_name("page.html")


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
) -> FastAPI:
    app = FastAPI(title="synthfactory dashboard", docs_url=None, redoc_url=None)

    def check(request: Request, needed: bool) -> None:
        if not needed:
            return
        given = request.headers.get("authorization", "").removeprefix(
            "Bearer "
        ).strip() or request.query_params.get("token", "")
        if not token or not hmac.compare_digest(given, token):
            raise HTTPException(status_code=401, detail="a valid access token is required")

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> str:
        check(request, require_token_to_read)
        return PAGE.read_text()

    @app.get("/api/datasets")
    def datasets(request: Request) -> JSONResponse:
        check(request, require_token_to_read)
        rows = cat.catalog(roots)
        ui = prefect_ui_url()
        for row in rows:
            if ui and row.get("flow_run_id"):
                row["prefect_url"] = f"{ui}/runs/flow-run/{row['flow_run_id']}"
        return JSONResponse({"roots": roots, "datasets": rows, "actions": actions})

    @app.get("/api/dataset")
    def dataset(request: Request, uri: str) -> JSONResponse:
        check(request, require_token_to_read)
        _inside(uri, roots)
        try:
            return JSONResponse(cat.detail(uri))
        except Exception as exc:
            return JSONResponse({"uri": uri, "error": str(exc)}, status_code=502)

    @app.get("/api/thumbnail")
    def thumbnail(request: Request, uri: str, row: int, column: str) -> Response:
        check(request, require_token_to_read)
        _inside(uri, roots)
        return Response(cat.thumbnail(uri, row, column), media_type="image/png")

    @app.get("/api/file")
    def dataset_file(request: Request, uri: str, key: str) -> Response:
        check(request, require_token_to_read)
        _inside(uri, roots)
        try:
            data, media = cat.dataset_file(uri, key)
        except PermissionError:
            raise HTTPException(403, "only plots and the dataset card are served") from None
        except FileNotFoundError:
            raise HTTPException(404, "no such file") from None
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
        check(request, True)
        if not actions:
            raise HTTPException(403, "actions are disabled")
        from uuid import UUID

        from prefect.client.orchestration import get_client
        from prefect.states import Cancelling

        async with get_client() as client:
            await client.set_flow_run_state(UUID(run_id), Cancelling(), force=True)
        return JSONResponse({"cancelled": run_id})

    @app.post("/api/deployments/{deployment_id}/run")
    async def rerun(request: Request, deployment_id: str) -> JSONResponse:
        check(request, True)
        if not actions:
            raise HTTPException(403, "actions are disabled")
        from uuid import UUID

        from prefect.client.orchestration import get_client

        async with get_client() as client:
            run = await client.create_flow_run_from_deployment(UUID(deployment_id))
        return JSONResponse({"flow_run_id": str(run.id)})

    return app


def _inside(uri: str, roots: list[str]) -> None:
    """Only datasets under the configured roots may be read through the dashboard."""
    norm = uri.rstrip("/")
    for root in roots:
        base = root.rstrip("/")
        if not root.startswith("s3://"):
            base = str(Path(base).expanduser().resolve())
            norm = str(Path(uri).expanduser().resolve()) if "://" not in uri else norm
        if norm == base or norm.startswith(base + "/"):
            return
    raise HTTPException(status_code=403, detail="that dataset is outside the dashboard's roots")
