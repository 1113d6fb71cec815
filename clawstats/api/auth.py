"""Who may ask: the ``Host`` allow-list (DNS rebinding), the bearer token, CORS preflight answers
in the JSON error shape, and request size limits; pure ASGI middleware.

The token check is constant-time; ``/healthz`` (which then says only ok/degraded) and the static
page (which holds no statistics and must load to ask for the token) pass without one. ``?token=``
is accepted on ``/api/events`` only, because ``EventSource`` cannot send headers.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from clawstats.api.errors import error_response

PUBLIC = frozenset({"/healthz", "/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
QUERY_TOKEN_PATHS = frozenset({"/api/events"})


def bearer_ok(scope: Scope, token: bytes) -> bool:
    """The request carries ``token`` (header; or ``?token=`` on the event stream)."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, given = value.partition(b" ")
            if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token):
                return True
    if scope["path"] in QUERY_TOKEN_PATHS:
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
            if name == "token" and hmac.compare_digest(value.encode("latin-1"), token):
                return True
    return False


class TokenAuth:
    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    def _allowed(self, scope: Scope) -> bool:
        assert self.token is not None
        return bearer_ok(scope, self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.token is None
            or scope["type"] != "http"
            or scope["path"] in PUBLIC
            or scope["path"].startswith(PUBLIC_PREFIXES)
            or self._allowed(scope)
        ):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401,
            "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
            {"WWW-Authenticate": 'Bearer realm="clawstats"'},
        )
        await response(scope, receive, send)


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind_host: str, extra: tuple[str, ...]) -> frozenset[str] | None:
    """The host names a request's ``Host`` may carry; None: any (a wildcard bind with no names
    configured, where the token is required anyway). A loopback bind accepts the loopback names:
    a web page that rebinds its own DNS name to 127.0.0.1 still sends its own name and is refused."""
    bound = bind_host.strip("[]").lower()
    names = {h.strip("[]").lower().rstrip(".") for h in extra}
    if bound in WILDCARDS:
        return frozenset(names | LOOPBACK_NAMES) if names else None
    names.add(bound)
    if is_loopback(bound):
        names |= LOOPBACK_NAMES
    return frozenset(names)


def _host_name(value: bytes) -> str:
    host = value.decode("latin-1").strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rpartition(":")[0].rstrip(".") if ":" in host else host.rstrip(".")


class HostCheck:
    """Refuse a ``Host`` not in the allow-list (421, JSON): DNS rebinding protection."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str] | None) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allowed is not None and scope["type"] == "http":
            for name, value in scope.get("headers", []):
                if name == b"host" and _host_name(value) not in self.allowed:
                    message = "this server does not answer for that host name (see --allowed-host)"
                    await error_response(421, message)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, but a refused preflight answers in the one JSON error shape."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        reason = bytes(response.body).decode("utf-8", "replace") or "CORS preflight refused"
        headers = {k: v for k, v in response.headers.items() if k not in ("content-type", "content-length")}
        return error_response(response.status_code, f"CORS preflight refused: {reason}", headers)


MAX_HEADER_BYTES = 16 * 1024
MAX_TARGET_BYTES = 8 * 1024


class RequestLimits:
    """Refuse oversized requests before any handler: headers over 16 KB (431), a path and query
    over 8 KB (414), any request body (405: the API is read-only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header_bytes = sum(len(name) + len(value) + 4 for name, value in scope.get("headers", []))
            target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            if header_bytes > MAX_HEADER_BYTES:
                await error_response(431, "request headers too large (limit 16 KB)")(scope, receive, send)
                return
            if target > MAX_TARGET_BYTES:
                await error_response(414, "request target too long (limit 8 KB)")(scope, receive, send)
                return
        await self.app(scope, receive, send)
