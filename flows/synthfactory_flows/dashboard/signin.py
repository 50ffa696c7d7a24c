"""Signing in and out: the access token (or the one-time link ``serve`` prints) is
exchanged for an HttpOnly, SameSite=Strict session cookie; the token itself is never
read from a URL."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from synthfactory_flows.dashboard.security import COOKIE, Access, Policy, same_origin

FORM = "application/x-www-form-urlencoded"


def add_signin_routes(app: FastAPI, policy: Policy) -> None:
    """``/api/session``, ``/api/login``, ``/login`` (the one-time link), ``/api/logout``."""
    access = policy.access

    @app.get("/api/session")
    def session(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "signed_in": access.how(request) is not None,
                "read_needs_token": policy.read_needs_token,
                "actions": policy.actions,
                "can_sign_in": access.has_token,
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
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        given = _given_token(await request.body(), kind)
        if given is None:
            raise HTTPException(422, 'send {"token": "..."} as JSON or a form field "token"')
        if not access.token_matches(given):
            raise HTTPException(401, "that is not the access token")
        response: Response
        if kind == FORM:
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


def _given_token(body: bytes, kind: str) -> bytes | None:
    """The token a login request sent (its bytes, whatever they are), or None."""
    try:
        if kind == FORM:
            form = parse_qs(body.decode("utf-8", "surrogateescape"), max_num_fields=10)
            values = form.get("token") or [""]
            return values[0].encode("utf-8", "surrogateescape")
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("token"), str):
            return bytes(data["token"].encode("utf-8", "surrogatepass"))
    except ValueError:
        return None
    return None


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
