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

from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from synthfactory_flows.dashboard.data_api import add_data_routes
from synthfactory_flows.dashboard.pages import add_page_routes
from synthfactory_flows.dashboard.prefect_api import add_prefect_routes
from synthfactory_flows.dashboard.security import (
    WILDCARD_HOSTS,
    Access,
    Guard,
    Policy,
    allowed_host_names,
    normal_host,
)
from synthfactory_flows.dashboard.signin import add_signin_routes


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
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, bad_request)  # type: ignore[arg-type]
    policy = Policy(access, roots, require_token_to_read, actions)
    add_page_routes(app)
    add_signin_routes(app, policy)
    add_data_routes(app, policy)
    add_prefect_routes(app, policy)
    return app


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Every error is JSON with an ``error`` line the page shows."""
    return JSONResponse(
        {"error": str(exc.detail), "detail": exc.detail},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def bad_request(request: Request, exc: RequestValidationError) -> Response:
    """A request that does not fit a route's parameters: 422 naming each one."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()
    )
    return JSONResponse(
        {"error": f"bad request: {problems}", "detail": jsonable_encoder(exc.errors())},
        status_code=422,
    )
