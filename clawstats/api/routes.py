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
from collections.abc import Callable, Iterator, Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse

from clawstats import __version__
from clawstats.api.alerts import AlertManager
from clawstats.api.auth import bearer_ok
from clawstats.api.bodies import TRIM_AFTER_BYTES, TRIM_HEAP, BodyCache, gather, gzip_pieces, sessions_pieces, streamed
from clawstats.api.errors import BadRequest, NotFound, NotReady
from clawstats.api.events import Hub
from clawstats.api.openapi import build_spec
from clawstats.api.otlp import ExporterStatus
from clawstats.core.attribution import ATTRIBUTION_BY
from clawstats.core.export import sessions_csv, usage_csv
from clawstats.core.query import QueryError, SessionQuery, match_and_sort, parse_day, parse_query, select
from clawstats.core.session import iso_ms
from clawstats.core.snapshot import Snapshot
from clawstats.core.totals import GROUP_BY

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

GROUP_BY_ALLOWED = GROUP_BY + ATTRIBUTION_BY
#: the burn rate slides with the clock: a cached usage body lives at most this long
BURN_RATE_REFRESH_S = 60

_encoder = msgspec.json.Encoder()
NO_CACHE = {"Cache-Control": "no-cache"}
GZIP_MIN_BYTES = 1024
STATIC = Path(str(files("clawstats") / "static"))
HEARTBEAT_S = 15.0
#: The stream sends its own keep-alive comments (see ``Hub.stream``); the library's ping task
#: would write between the pieces of a frame. (Not 0: older sse-starlette releases spun on it.)
NO_LIBRARY_PING_S = 1e9
SEND_TIMEOUT_S = 10.0
#: How long a stream may take to end by itself at shutdown (under uvicorn's 3 s graceful limit).
SHUTDOWN_GRACE_S = 1.0


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
    def __init__(
        self,
        hub: Hub,
        registry: Callable[[], CollectorRegistry],
        token: str | None,
        alerts: AlertManager,
        daily_budget_usd: float | None = None,
    ) -> None:
        self.hub = hub
        self.daily_budget_usd = daily_budget_usd
        # made (and the Prometheus client imported, ~1.3 MiB) at the first scrape: a server no
        # Prometheus reads does not hold it
        self._make_registry = registry
        self._registry: CollectorRegistry | None = None
        self.token = token
        self.alert_manager = alerts
        self.cache = BodyCache()
        self.otlp: ExporterStatus | None = None  # the OTLP export, when one runs
        self.spec = build_spec()
        # Filtered and sorted rows per (revision, filters, sort): paging through 50,000 rows
        # sorts once per revision, not once per page.
        self.orders: OrderedDict[tuple[object, ...], Sequence[Any]] = OrderedDict()

    def _snapshot(self) -> Snapshot:
        snapshot = self.hub.current
        if snapshot is None:
            raise NotReady("the first scan of the store is still running; retry shortly", {"Retry-After": "1"})
        return snapshot

    def _cached(
        self,
        request: Request,
        route: str,
        media_type: str,
        build: Callable[[Snapshot], Iterator[bytes]],
        moving: bool = False,
    ) -> Response:
        """The body for (route, revision, query), its ETag and 304. Call after validating the query
        (an invalid one is a 400 whatever ``If-None-Match`` says). ``build`` gives the body's
        pieces. ``moving``: the answer depends on the request's time (``?active=``), so it is
        built per request and tagged by its content."""
        snapshot = self._snapshot()
        query = request.url.query
        if moving:
            body = b"".join(build(snapshot))
            etag = '"' + hashlib.blake2s(body, digest_size=8).hexdigest() + '"'
        else:
            tag_key = f"{route}|{snapshot.revision}|{query}".encode()
            etag = '"' + hashlib.blake2s(tag_key, digest_size=8).hexdigest() + '"'
        headers = {**NO_CACHE, "ETag": etag}
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        gzip_ok = "gzip" in request.headers.get("accept-encoding", "")
        zipped_headers = {**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        if not moving:
            key = (route, snapshot.revision, query)
            zipped_key = (route + "+gzip", snapshot.revision, query)
            kept = self.cache.peek(zipped_key) if gzip_ok else None
            if kept is not None:  # a body too big to keep has its gzip copy kept
                return _response(kept, media_type, zipped_headers)
            cached = self.cache.peek(key)
            if cached is None:
                cached, pieces = gather(build(snapshot), self.cache.max_item_bytes)
                if cached is None:  # too big to keep: never joined (but for HEAD, which answers its length)
                    return self._big(request, pieces, gzip_ok, zipped_key, media_type, headers, zipped_headers)
                self.cache.put(key, cached)
            body = cached
        if len(body) >= GZIP_MIN_BYTES and gzip_ok:
            # Compressed once per revision, not per request (GZipMiddleware passes it through, so
            # Vary is set here; for an identity body of this size GZipMiddleware sets it).
            zipped = gzip.compress(body, 6) if moving else self.cache.get(zipped_key, lambda: gzip.compress(body, 6))
            return _response(zipped, media_type, zipped_headers)
        return _response(body, media_type, headers)

    def _big(
        self,
        request: Request,
        pieces: Iterator[bytes],
        gzip_ok: bool,
        zipped_key: tuple[str, int, str],
        media_type: str,
        headers: dict[str, str],
        zipped_headers: dict[str, str],
    ) -> Response:
        """A body over the cache's item bound: its gzip copy compressed piece by piece and kept,
        or (identity) sent as it is encoded: never whole in memory."""
        if gzip_ok:
            zipped = gzip_pieces(pieces)
            self.cache.put(zipped_key, zipped)
            return Response(zipped, media_type=media_type, headers=zipped_headers, background=TRIM_HEAP)
        if request.method == "HEAD":  # its Content-Length as a GET's body would have it
            return _response(b"".join(pieces), media_type, headers)
        return StreamingResponse(streamed(pieces), media_type=media_type, headers=headers, background=TRIM_HEAP)

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
        query = self._query(request, ("fields",))

        def build(snapshot: Snapshot) -> Iterator[bytes]:
            rows, matched = self._page(query, snapshot)  # here, not when the first piece is asked for
            tail = {
                "totals": snapshot.totals,
                "matched": matched,
                "revision": snapshot.revision,
                "generatedAt": iso_ms(snapshot.generated_ms),
            }
            return sessions_pieces(rows, query.fields, tail)

        return self._cached(request, "sessions", "application/json", build, query.active_min is not None)

    async def sessions_csv(self, request: Request) -> Response:
        query = self._query(request)

        def build(snapshot: Snapshot) -> Iterator[bytes]:
            return iter((sessions_csv(self._page(query, snapshot)[0]).encode(),))

        return self._cached(request, "sessions.csv", "text/csv; charset=utf-8", build, query.active_min is not None)

    async def session(self, request: Request) -> Response:
        # Starlette has already percent-decoded the path once; decoding again would turn a key's
        # literal "%25" into "%" and the row could never be fetched.
        key = request.path_params["key"]
        snapshot = self._snapshot()
        if request.query_params:
            raise BadRequest("this route takes no query parameters")
        detail = snapshot.detail(key)
        if detail is None:
            raise NotFound(f"no session with key {key!r}", key=key)
        return Response(_encoder.encode(detail), media_type="application/json", headers=NO_CACHE)

    @staticmethod
    def _usage_query(request: Request) -> tuple[str, str | None, str | None]:
        params = _params(request)
        unknown = set(params) - {"since", "until", "by"}
        if unknown:
            name = sorted(unknown)[0]
            raise BadRequest(f"invalid parameter '{name}': known are by, since, until", param=name)
        by = params.get("by") or "model"
        try:
            if by not in GROUP_BY_ALLOWED:
                raise QueryError("by", "one of " + ", ".join(GROUP_BY_ALLOWED), by)
            return by, parse_day("since", params.get("since")), parse_day("until", params.get("until"))
        except QueryError as exc:
            raise BadRequest(str(exc), param=exc.param, allowed=exc.allowed) from None

    async def usage(self, request: Request) -> Response:
        by, since, until = self._usage_query(request)
        now_ms = time.time() * 1000.0
        # The burn rate depends on the clock as well as on the data: one body per revision and minute.
        minute = int(now_ms // (BURN_RATE_REFRESH_S * 1000))

        def build(snapshot: Snapshot) -> Iterator[bytes]:
            overall, per_agent = snapshot.burn(now_ms, self.daily_budget_usd)
            body = {
                "by": by,
                "since": since,
                "until": until,
                "groups": snapshot.usage(by, since, until),
                "burnRate": overall,
                "burnRateByAgent": per_agent,
                "revision": snapshot.revision,
                "generatedAt": iso_ms(snapshot.generated_ms),
            }
            return iter((_encoder.encode(body),))

        return self._cached(request, f"usage@{minute}", "application/json", build)

    async def usage_csv(self, request: Request) -> Response:
        by, since, until = self._usage_query(request)

        def build(snapshot: Snapshot) -> Iterator[bytes]:
            return iter((usage_csv(snapshot.usage(by, since, until), by).encode(),))

        return self._cached(request, "usage.csv", "text/csv; charset=utf-8", build)

    def _otlp_health(self, status: str) -> dict[str, Any]:
        """The OTLP exporter's state; a failing export makes the service degraded."""
        if self.otlp is None:
            return {}
        failing = self.otlp.state == "failing"
        return {"otlp": self.otlp.to_dict(), **({"status": "degraded"} if failing and status == "ok" else {})}

    async def healthz(self, request: Request) -> Response:
        no_query(request)
        snapshot = self.hub.current
        status = "starting" if snapshot is None else snapshot.health.status
        if self.token is not None and not bearer_ok(request.scope, self.token.encode()):
            # Without credentials only whether the service is healthy: no paths, ids or counts.
            return Response(
                _encoder.encode({"status": status}),
                status_code=503 if snapshot is None else 200,
                media_type="application/json",
                headers=NO_CACHE,
            )
        if snapshot is None:
            body: dict[str, Any] = {"status": status, "version": __version__}
            return Response(_encoder.encode(body), status_code=503, media_type="application/json", headers=NO_CACHE)
        body = {
            **snapshot.health.to_dict(),
            "version": __version__,
            **self._otlp_health(snapshot.health.status),
            "revision": snapshot.revision,
            "sessions": len(snapshot.by_key),  # (the rows in order are made only for a reader of them)
            "eventClients": len(self.hub.subscribers),
            "eventClientsDropped": self.hub.dropped_total,
            "auth": self.token is not None,
        }
        return Response(_encoder.encode(body), media_type="application/json", headers=NO_CACHE)

    async def metrics(self, request: Request) -> Response:
        no_query(request)
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if self._registry is None:
            self._registry = self._make_registry()
        return Response(generate_latest(self._registry), media_type=CONTENT_TYPE_LATEST, headers=NO_CACHE)

    async def events(self, request: Request) -> Response:
        no_query(request, allowed=frozenset({"token"}))
        last = request.headers.get("last-event-id")
        shutdown = anyio.Event()  # set by sse-starlette when the server stops: the stream ends
        return EventSourceResponse(
            self.hub.stream(last, shutdown, HEARTBEAT_S),
            ping=NO_LIBRARY_PING_S,
            send_timeout=SEND_TIMEOUT_S,
            shutdown_event=shutdown,
            shutdown_grace_period=SHUTDOWN_GRACE_S,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def alerts(self, request: Request) -> Response:
        no_query(request)
        return Response(_encoder.encode(self.alert_manager.listing()), media_type="application/json", headers=NO_CACHE)

    async def openapi(self, _request: Request) -> Response:
        return JSONResponse(self.spec)

    async def docs(self, _request: Request) -> Response:
        return HTMLResponse(_docs_page(self.spec))

    async def index(self, _request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def _response(body: bytes, media_type: str, headers: dict[str, str]) -> Response:
    return Response(
        body, media_type=media_type, headers=headers, background=TRIM_HEAP if len(body) >= TRIM_AFTER_BYTES else None
    )


def no_query(request: Request, allowed: frozenset[str] = frozenset()) -> None:
    """A route without parameters refuses any (the README promises 400, not a silent ignore)."""
    for name in request.query_params:
        if name not in allowed:
            raise BadRequest(f"invalid parameter '{name}': this route takes no query parameters", param=name)
