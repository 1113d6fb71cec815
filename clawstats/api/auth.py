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
