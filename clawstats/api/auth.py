"""Bearer-token check (pure ASGI middleware), constant-time; ``/healthz`` and the static page
(which holds no statistics and must load to ask for the token) pass without one.

``?token=`` is accepted on ``/api/events`` only, because ``EventSource`` cannot send headers.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from clawstats.api.errors import error_response

PUBLIC = frozenset({"/healthz", "/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
QUERY_TOKEN_PATHS = frozenset({"/api/events"})


class TokenAuth:
    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    def _allowed(self, scope: Scope) -> bool:
        assert self.token is not None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token):
                    return True
        if scope["path"] in QUERY_TOKEN_PATHS:
            for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
                if name == "token" and hmac.compare_digest(value.encode("latin-1"), self.token):
                    return True
        return False

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
