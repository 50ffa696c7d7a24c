"""The dashboard's view of Prefect: recent flow runs, and the two actions (cancel a run,
run a deployment again), which need the access token. Each run is shown with the dataset
version it writes, and as crashed when that version says its process died."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from synthfactory_flows.dashboard.catalog import catalog
from synthfactory_flows.dashboard.security import Policy

#: Prefect states a run keeps when its process dies without telling the server
#: (SIGKILL, a lost machine, an embedded server that died with it)
UNFINISHED_STATES = frozenset({"PENDING", "RUNNING", "CANCELLING"})
#: version statuses that say the run's process is gone (its lease expired, or its holder
#: died on this machine; ``stale``: no lease and no progress for minutes)
DEAD_VERSIONS = frozenset({"crashed", "stale"})


def prefect_ui_url() -> str | None:
    api = os.environ.get("PREFECT_API_URL")
    return api.removesuffix("/").removesuffix("/api") if api else None


def with_prefect_url(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with a link to its flow run in the Prefect UI, when it names one."""
    ui = prefect_ui_url()
    if ui and body.get("flow_run_id"):
        body["prefect_url"] = f"{ui}/runs/flow-run/{body['flow_run_id']}"
    return body


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
            "state_type": r.state_type.value if r.state_type else None,
            "url": f"{ui}/runs/flow-run/{r.id}" if ui else None,
        }
        for r in runs
    ]


def with_versions(runs: list[dict[str, Any]], versions: list[dict[str, Any]]) -> None:
    """Each run gets the dataset version it writes (``dataset``: uri, name, version,
    status; matched by the flow run id in the version's manifest or progress record). A
    run Prefect still has as running whose version says its process is gone shows that
    instead (``state`` Crashed or Stale, Prefect's own in ``prefect_state``)."""
    by_run = {str(v["flow_run_id"]): v for v in versions if v.get("flow_run_id")}
    for run in runs:
        version = by_run.get(run["id"])
        if version is None:
            continue
        run["dataset"] = {k: version.get(k) for k in ("uri", "name", "version", "status")}
        if run.get("state_type") in UNFINISHED_STATES and version["status"] in DEAD_VERSIONS:
            run["prefect_state"] = run["state"]
            run["state"] = str(version["status"]).capitalize()


class RecentCatalog:
    """The catalog as ``/api/runs`` needs it: matching runs to versions on every poll (the
    page asks every 2 s) would list every root each time, which on a large S3 root doubles
    the listing calls the catalog page already makes. One listing serves the polls of the
    next ``ttl_s`` seconds (a crashed run shows as such at most that much later)."""

    def __init__(
        self,
        roots: list[str],
        ttl_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        read: Callable[[list[str]], list[dict[str, Any]]] = catalog,
    ) -> None:
        self.roots, self.ttl_s, self.clock, self.read = roots, ttl_s, clock, read
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._at: float | None = None

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            now = self.clock()
            if self._at is None or now - self._at >= self.ttl_s:
                self._rows, self._at = self.read(self.roots), now
            return self._rows


def add_prefect_routes(app: FastAPI, policy: Policy) -> None:
    """``/api/runs`` (a read), and the actions ``cancel`` and ``run`` (a deployment)."""
    versions = RecentCatalog(policy.roots)

    @app.get("/api/runs")
    async def runs(request: Request) -> JSONResponse:
        policy.check_read(request)
        try:
            found = await recent_runs()
        except Exception as exc:
            return JSONResponse({"runs": [], "error": str(exc)})
        if found:
            with_versions(found, await run_in_threadpool(versions.rows))
        return JSONResponse({"runs": found, "prefect_ui": prefect_ui_url()})

    @app.post("/api/runs/{run_id}/cancel")
    async def cancel(request: Request, run_id: str) -> JSONResponse:
        policy.check_action(request)
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
        policy.check_action(request)
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


def _uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise HTTPException(404, f"no {what} {value!r} (not a UUID)") from None


def _require_prefect() -> None:
    if not os.environ.get("PREFECT_API_URL"):
        raise HTTPException(503, "no Prefect server is configured (PREFECT_API_URL)")
