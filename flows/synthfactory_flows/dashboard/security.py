"""The dashboard's guards: the Host allowlist (DNS rebinding), the security headers on
every response, the access token and session cookies, and the checks every route makes
(``Policy``: token, roots, same origin for actions). ``app.py`` wires them together."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from synthfactory.storage import inside

log = logging.getLogger(__name__)

COOKIE = "synthfactory_session"
SESSION_SECONDS = 12 * 3600
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
_REPLACED = {name for name, _ in SECURITY_HEADERS}


# --- Host header ---------------------------------------------------------------------------


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header, lowercased, without port or brackets; None when the
    header is malformed."""
    value = header.strip().lower()
    if not value:
        return None
    if value.startswith("["):
        end = value.find("]")
        name, rest = value[1:end], value[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name
    name, _, port = value.partition(":")
    if (port and not port.isdigit()) or ":" in port:
        return None
    return name.rstrip(".") or None


def allowed_host_names(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Loopback names, the address the server is bound to and ``extra``; a wildcard bind
    (0.0.0.0) adds this machine's host names."""
    names = {*LOOPBACK_HOSTS, *(normal_host(h) for h in extra)}
    bind = normal_host(bind_host)
    if bind in WILDCARD_HOSTS:
        names |= {normal_host(socket.gethostname()), normal_host(socket.getfqdn())}
    else:
        names.add(bind)
    return frozenset(n for n in names if n)


def normal_host(name: str) -> str:
    return name.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _in_process(scope: Scope, host: str) -> bool:
    """Starlette's TestClient (client "testclient", Host "testserver"): no network peer
    has that client address, so no browser can be rebound to it."""
    client = scope.get("client") or ("", 0)
    return bool(client[0] == "testclient" and host == "testserver")


class Guard:
    """ASGI middleware: the Host allowlist, the security headers on every response, and a
    JSON error (no traceback) for anything unexpected."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str], any_ip: bool) -> None:
        self.app = app
        self.hosts = hosts
        self.any_ip = any_ip

    def host_allowed(self, header: str) -> bool:
        name = host_name(header)
        if name is None:
            return False
        # an IP literal cannot be rebound by DNS: allowed when bound to every interface
        return name in self.hosts or (self.any_ip and _is_ip(name))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in _REPLACED
                ]
                message = {**message, "headers": [*headers, *SECURITY_HEADERS]}
            await send(message)

        host = Headers(scope=scope).get("host", "")
        if not (self.host_allowed(host) or _in_process(scope, host)):
            error = (
                f"Host {host!r} is not served here; start the dashboard with "
                "--allowed-host NAME to serve it"
            )
            await JSONResponse({"error": error}, status_code=400)(scope, receive, secured)
            return
        try:
            await self.app(scope, receive, secured)
        except Exception:
            log.exception("dashboard request failed: %s", scope.get("path"))
            if started:
                raise
            response = JSONResponse({"error": "internal error (see the server log)"}, 500)
            await response(scope, receive, secured)


# --- access token and sessions -------------------------------------------------------------


def _raw(value: str) -> bytes:
    """The bytes a client sent: Starlette decodes header values as latin-1."""
    return value.encode("latin-1", "replace")


class Access:
    """The access token, the one-time sign-in code and the sessions they opened."""

    def __init__(self, token: str | None, session_seconds: float = SESSION_SECONDS) -> None:
        self._token = token.encode("utf-8", "surrogatepass") if token else None
        self.session_seconds = session_seconds
        #: printed by ``serve`` as a sign-in link; void once used
        self.login_code: str | None = secrets.token_urlsafe(24) if token else None
        self._sessions: dict[bytes, float] = {}

    @property
    def has_token(self) -> bool:
        """Whether there is a token to sign in with."""
        return self._token is not None

    def token_matches(self, given: bytes) -> bool:
        """Constant-time comparison of bytes (any client input, ASCII or not)."""
        return self._token is not None and hmac.compare_digest(given, self._token)

    def use_login_code(self, given: str) -> bool:
        code = self.login_code
        if code is None or not hmac.compare_digest(_raw(given), code.encode()):
            return False
        self.login_code = None
        return True

    def open_session(self) -> str:
        now = time.time()
        self._sessions = {k: t for k, t in self._sessions.items() if t > now}
        session = secrets.token_urlsafe(32)
        self._sessions[_digest(session)] = now + self.session_seconds
        return session

    def close_session(self, session: str) -> None:
        self._sessions.pop(_digest(session), None)

    def session_valid(self, session: str) -> bool:
        expires = self._sessions.get(_digest(session))
        return expires is not None and expires > time.time()

    def how(self, request: Request) -> Literal["header", "cookie"] | None:
        """How ``request`` proves it holds the token, if it does."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(_raw(value.strip())):
            return "header"
        session = request.cookies.get(COOKIE)
        if session and self.session_valid(session):
            return "cookie"
        return None


def _digest(session: str) -> bytes:
    return hashlib.sha256(session.encode("utf-8", "surrogatepass")).digest()


def same_origin(request: Request) -> bool:
    """Whether a browser sent ``request`` from this dashboard's own page: Sec-Fetch-Site
    where the browser sends it, else Origin against Host. Another port on localhost is
    same-site (SameSite cookies go there) but not same-origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return False
    origin = request.headers.get("origin")
    if origin is not None:
        if origin == "null":
            return False
        netloc = urlsplit(origin).netloc.lower()
        return bool(netloc) and netloc == request.headers.get("host", "").lower()
    return site is not None


# --- who may read and act ------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """The checks every route makes: reads need the token when ``read_needs_token``, and
    touch only URIs inside ``roots`` (by their storage scheme's rule); actions need the
    token, from this origin when it came as a cookie, and ``actions`` on."""

    access: Access
    roots: list[str]
    read_needs_token: bool = False
    actions: bool = True

    def check_read(self, request: Request) -> None:
        if self.read_needs_token and self.access.how(request) is None:
            raise HTTPException(status_code=401, detail="a valid access token is required")

    def may_read(self, request: Request, uri: str) -> None:
        """Raises unless ``request`` may read ``uri``."""
        self.check_read(request)
        if not self.inside(uri):
            raise HTTPException(403, "that dataset is outside the dashboard's roots")

    def inside(self, uri: str) -> bool:
        return inside(uri, self.roots)

    def check_action(self, request: Request) -> None:
        how = self.access.how(request)
        if how is None:
            raise HTTPException(status_code=401, detail="a valid access token is required")
        if how == "cookie" and not same_origin(request):
            raise HTTPException(403, "cross-origin request refused")
        if not self.actions:
            raise HTTPException(403, "actions are disabled")
