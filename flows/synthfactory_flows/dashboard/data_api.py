"""The dashboard's read API over datasets: the catalog, one version's detail, run and
overview, pages of rows, thumbnails and files. Every route reads only URIs inside the
roots (``Policy.may_read``); a missing version is a 404, a broken one a 502."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from synthfactory.dataset.catalog import BrokenManifestError
from synthfactory.errors import ConfigError
from synthfactory_flows.dashboard import catalog as cat
from synthfactory_flows.dashboard import dataset_view, run_view
from synthfactory_flows.dashboard.prefect_api import with_prefect_url
from synthfactory_flows.dashboard.security import Policy


def add_data_routes(app: FastAPI, policy: Policy) -> None:
    """The catalog and one version's detail, thumbnails and files."""

    @app.get("/api/datasets")
    def datasets(request: Request) -> JSONResponse:
        policy.check_read(request)
        rows = [with_prefect_url(row) for row in cat.catalog(policy.roots)]
        body = {"roots": policy.roots, "datasets": rows, "actions": policy.actions}
        return JSONResponse(cat.finite(body))

    @app.get("/api/dataset")
    def dataset(request: Request, uri: str) -> JSONResponse:
        policy.may_read(request, uri)
        return _read(uri, lambda: cat.detail(uri))

    @app.get("/api/thumbnail")
    def thumbnail(
        request: Request, uri: str, column: str, row: int = Query(ge=0, le=1_000_000)
    ) -> Response:
        policy.may_read(request, uri)
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
        policy.may_read(request, uri)
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

    _add_watch_routes(app, policy)


def _add_watch_routes(app: FastAPI, policy: Policy) -> None:
    """The run page's and the dataset page's API."""

    @app.get("/api/run")
    def run(request: Request, uri: str) -> JSONResponse:
        """One version's run: progress with its sampled history, shard timeline, state."""
        policy.may_read(request, uri)
        return _read(uri, lambda: dict(cat.finite(with_prefect_url(run_view.run_detail(uri)))))

    @app.get("/api/dataset/overview")
    def overview(request: Request, uri: str) -> JSONResponse:
        """Metrics over versions, gates, judge scores, rejected rows, cost, lineage."""
        policy.may_read(request, uri)
        return _read(uri, lambda: dataset_view.overview(uri, policy.inside))

    @app.get("/api/dataset/rows")
    def dataset_rows(
        request: Request,
        uri: str,
        offset: int = Query(0, ge=0, le=10_000_000),
        limit: int = Query(10, ge=1, le=dataset_view.MAX_PAGE),
    ) -> JSONResponse:
        """Whole rows for the sample browser, a page at a time."""
        policy.may_read(request, uri)
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
