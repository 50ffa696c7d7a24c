"""The dashboard's pages and files: each page is ``shell.html`` (the one ``<head>``: its
title, style sheets and scripts, all from this server) around the page's own ``<body>``
file. No data goes into a page: its script asks the API, which checks the token."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from string import Template

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

HERE = Path(__file__).parent
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


@dataclass(frozen=True)
class Page:
    body: str
    """The file holding the page's ``<body>``."""
    title: str
    script: str
    """The page's own script (in ``STATIC``), loaded after ``common.js``."""
    charts: bool = False
    """Whether the page draws charts (loads the vendored uPlot)."""

    def render(self) -> str:
        styles = ["/static/page.css"]
        scripts = ["/static/common.js", f"/static/{self.script}"]
        if self.charts:
            styles.insert(0, "/static/vendor/uPlot.min.css")
            scripts.insert(0, "/static/vendor/uPlot.iife.min.js")
        links = [f'<link rel="stylesheet" href="{html.escape(href)}">' for href in styles]
        links += [f'<script src="{html.escape(src)}" defer></script>' for src in scripts]
        return Template((HERE / "shell.html").read_text()).substitute(
            title=html.escape(self.title),
            links="\n".join(links),
            body=(HERE / self.body).read_text().rstrip("\n"),
        )


#: path -> page (the catalog, one run, one dataset); their data comes from the API
PAGES = {
    "/": Page("page.html", "synthfactory", "page.js"),
    "/run": Page("run.html", "synthfactory · run", "run.js", charts=True),
    "/dataset": Page("dataset.html", "synthfactory · dataset", "dataset.js", charts=True),
}


def add_page_routes(app: FastAPI) -> None:
    """The pages, their scripts and style, the vendored chart library and ``/healthz``."""

    def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGES[request.url.path].render())

    for path in PAGES:
        app.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, "no such file")
        return Response((HERE / name).read_bytes(), media_type=STATIC[name])

    @app.get("/static/vendor/{name}")
    def vendored(name: str) -> Response:
        if name not in VENDOR:
            raise HTTPException(404, "no such file")
        return Response((HERE / "vendor" / name).read_bytes(), media_type=VENDOR[name])

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """For probes: no token, no data."""
        return JSONResponse({"ok": True})
