"""Request handlers. They read the hub's current snapshot and never touch the disk.

Bodies are encoded once per (revision, query) and kept in a small cache, so a dashboard
polling ``/api/sessions`` costs one dictionary lookup per request between changes; the
``ETag`` is derived from the same key and ``If-None-Match`` answers 304.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from clawstats import __version__
from clawstats.api.alerts import AlertManager
from clawstats.api.errors import BadRequest, NotFound, NotReady
from clawstats.api.events import Hub
from clawstats.api.openapi import build_spec
from clawstats.core.export import sessions_csv, usage_csv
from clawstats.core.query import QueryError, SessionQuery, match_and_sort, parse_day, parse_query, project, select
from clawstats.core.session import iso_ms
from clawstats.core.snapshot import Snapshot
from clawstats.core.totals import GROUP_BY as GROUP_BY_ALLOWED

_encoder = msgspec.json.Encoder()
NO_CACHE = {"Cache-Control": "no-cache"}
GZIP_MIN_BYTES = 1024
STATIC = Path(str(files("clawstats") / "static"))
HEARTBEAT_S = 15.0
SEND_TIMEOUT_S = 10.0


class BodyCache:
    """LRU of encoded bodies by (route, revision, query), bounded in count and in bytes (at
    50,000 sessions one all-rows body is tens of MB: a few of them, not 128)."""

    def __init__(self, size: int = 128, max_bytes: int = 64 << 20) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self.items: OrderedDict[tuple[str, int, str], bytes] = OrderedDict()

    def get(self, key: tuple[str, int, str], build: Callable[[], bytes]) -> bytes:
        body = self.items.get(key)
        if body is None:
            body = build()
            self.items[key] = body
            self.bytes += len(body)
            while len(self.items) > 1 and (len(self.items) > self.size or self.bytes > self.max_bytes):
                self.bytes -= len(self.items.popitem(last=False)[1])
        else:
            self.items.move_to_end(key)
        return body


def _params(request: Request) -> dict[str, str]:
    """Single-valued query parameters; a repeated one is an error, not a silent pick."""
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in params:
            raise BadRequest(f"parameter '{name}' given more than once", param=name)
        params[name] = value
    return params


def _docs_page(spec: dict[str, object]) -> str:
    paths = spec["paths"]
    assert isinstance(paths, dict)
    items = "".join(f"<li><code>GET {path}</code>: {op['get']['summary']}</li>" for path, op in paths.items())
    return (
        "<!doctype html><meta charset=utf-8><title>clawstats API</title>"
        "<h1>clawstats API</h1><p>Machine-readable: <a href=/openapi.json>/openapi.json</a></p>"
        f"<ul>{items}</ul>"
    )


class Routes:
    def __init__(self, hub: Hub, registry: CollectorRegistry, token_set: bool, alerts: AlertManager) -> None:
        self.hub = hub
        self.registry = registry
        self.token_set = token_set
        self.alert_manager = alerts
        self.cache = BodyCache()
        self.spec = build_spec()
        # Filtered and sorted rows per (revision, filters, sort): paging through 50,000 rows
        # sorts once per revision, not once per page.
        self.orders: OrderedDict[tuple[object, ...], Sequence[Any]] = OrderedDict()

    def _snapshot(self) -> Snapshot:
        snapshot = self.hub.current
        if snapshot is None:
            raise NotReady("the first scan of the store is still running; retry shortly", {"Retry-After": "1"})
        return snapshot

    def _cached(self, request: Request, route: str, media_type: str, build: Callable[[Snapshot], bytes]) -> Response:
        snapshot = self._snapshot()
        query = request.url.query
        etag = '"' + hashlib.blake2s(f"{route}|{snapshot.revision}|{query}".encode(), digest_size=8).hexdigest() + '"'
        headers = {**NO_CACHE, "ETag": etag, "Vary": "Accept-Encoding"}
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        key = (route, snapshot.revision, query)
        body = self.cache.get(key, lambda: build(snapshot))
        if len(body) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
            # Compressed once per revision, not per request (GZipMiddleware passes it through).
            zipped = self.cache.get((route + "+gzip", snapshot.revision, query), lambda: gzip.compress(body, 6))
            return Response(zipped, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
        return Response(body, media_type=media_type, headers=headers)

    @staticmethod
    def _query_error(exc: QueryError) -> BadRequest:
        return BadRequest(str(exc), param=exc.param, allowed=exc.allowed)

    def _query(self, request: Request, known: tuple[str, ...] = ()) -> SessionQuery:
        try:
            return parse_query(_params(request), known)
        except QueryError as exc:
            raise self._query_error(exc) from None

    def _page(self, query: SessionQuery, snapshot: Snapshot) -> tuple[list[Any], int]:
        now_ms = time.time() * 1000.0
        if query.active_min is not None:  # depends on the time: not cached
            return select(snapshot.rows, query, now_ms)
        key = (snapshot.revision, query.agent, query.model, query.q, query.archived, query.sort, query.order)
        ordered = self.orders.get(key)
        if ordered is None:
            ordered = self.orders[key] = match_and_sort(snapshot.rows, query, now_ms)
            if len(self.orders) > 8:
                self.orders.popitem(last=False)
        return select(snapshot.rows, query, now_ms, ordered)

    async def sessions(self, request: Request) -> Response:
        def build(snapshot: Snapshot) -> bytes:
            query = self._query(request, ("fields",))
            rows, matched = self._page(query, snapshot)
            body = {
                "sessions": project(rows, query.fields),
                "totals": snapshot.totals,
                "matched": matched,
                "revision": snapshot.revision,
                "generatedAt": iso_ms(snapshot.generated_ms),
            }
            return _encoder.encode(body)

        return self._cached(request, "sessions", "application/json", build)

    async def sessions_csv(self, request: Request) -> Response:
        def build(snapshot: Snapshot) -> bytes:
            return sessions_csv(self._page(self._query(request), snapshot)[0]).encode()

        return self._cached(request, "sessions.csv", "text/csv; charset=utf-8", build)

    async def session(self, request: Request) -> Response:
        key = unquote(request.path_params["key"])
        snapshot = self._snapshot()
        if request.query_params:
            raise BadRequest("this route takes no query parameters")
        detail = snapshot.detail(key)
        if detail is None:
            raise NotFound(f"no session with key {key!r}", key=key)
        return Response(_encoder.encode(detail), media_type="application/json", headers=NO_CACHE)

    def _usage_groups(self, request: Request, snapshot: Snapshot) -> tuple[dict[str, Any], str]:
        params = _params(request)
        unknown = set(params) - {"since", "until", "by"}
        if unknown:
            name = sorted(unknown)[0]
            raise BadRequest(f"invalid parameter '{name}': known are by, since, until", param=name)
        by = params.get("by") or "model"
        try:
            if by not in GROUP_BY_ALLOWED:
                raise QueryError("by", "one of " + ", ".join(GROUP_BY_ALLOWED), by)
            since, until = parse_day("since", params.get("since")), parse_day("until", params.get("until"))
        except QueryError as exc:
            raise self._query_error(exc) from None
        body = {"by": by, "since": since, "until": until, "groups": snapshot.usage(by, since, until)}
        return body, by

    async def usage(self, request: Request) -> Response:
        def build(snapshot: Snapshot) -> bytes:
            body, _ = self._usage_groups(request, snapshot)
            body["revision"] = snapshot.revision
            body["generatedAt"] = iso_ms(snapshot.generated_ms)
            return _encoder.encode(body)

        return self._cached(request, "usage", "application/json", build)

    async def usage_csv(self, request: Request) -> Response:
        def build(snapshot: Snapshot) -> bytes:
            body, by = self._usage_groups(request, snapshot)
            return usage_csv(body["groups"], by).encode()

        return self._cached(request, "usage.csv", "text/csv; charset=utf-8", build)

    async def healthz(self, request: Request) -> Response:
        snapshot = self.hub.current
        if snapshot is None:
            body: dict[str, Any] = {"status": "starting", "version": __version__}
            return Response(_encoder.encode(body), status_code=503, media_type="application/json", headers=NO_CACHE)
        body = {
            **snapshot.health.to_dict(),
            "version": __version__,
            "revision": snapshot.revision,
            "sessions": len(snapshot.rows),
            "eventClients": len(self.hub.subscribers),
            "eventClientsDropped": self.hub.dropped_total,
            "auth": self.token_set,
        }
        return Response(_encoder.encode(body), media_type="application/json", headers=NO_CACHE)

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST, headers=NO_CACHE)

    async def events(self, request: Request) -> Response:
        last = request.headers.get("last-event-id")
        return EventSourceResponse(
            self.hub.stream(last),
            ping=HEARTBEAT_S,
            send_timeout=SEND_TIMEOUT_S,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def alerts(self, request: Request) -> Response:
        if request.query_params:
            raise BadRequest("this route takes no query parameters")
        return Response(_encoder.encode(self.alert_manager.listing()), media_type="application/json", headers=NO_CACHE)

    async def openapi(self, _request: Request) -> Response:
        return JSONResponse(self.spec)

    async def docs(self, _request: Request) -> Response:
        return HTMLResponse(_docs_page(self.spec))

    async def index(self, _request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
