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
from collections.abc import Callable
from typing import Any

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response

from clawstats import __version__
from clawstats.api.auth import bearer_ok
from clawstats.api.errors import BadRequest, NotFound, NotReady
from clawstats.api.events import Hub
from clawstats.api.otlp import ExporterStatus
from clawstats.core.attribution import ATTRIBUTION_BY
from clawstats.core.export import sessions_csv, usage_csv
from clawstats.core.query import QueryError, SessionQuery, parse_day, parse_query, select
from clawstats.core.session import iso_ms
from clawstats.core.snapshot import Snapshot
from clawstats.core.totals import GROUP_BY

GROUP_BY_ALLOWED = GROUP_BY + ATTRIBUTION_BY
#: the burn rate slides with the clock: a cached usage body lives at most this long
BURN_RATE_REFRESH_S = 60

_encoder = msgspec.json.Encoder()
NO_CACHE = {"Cache-Control": "no-cache"}
GZIP_MIN_BYTES = 1024


class BodyCache:
    """LRU of encoded bodies by (route, revision, query)."""

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self.items: OrderedDict[tuple[str, int, str], bytes] = OrderedDict()

    def get(self, key: tuple[str, int, str], build: Callable[[], bytes]) -> bytes:
        body = self.items.get(key)
        if body is None:
            body = build()
            self.items[key] = body
            if len(self.items) > self.size:
                self.items.popitem(last=False)
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


class Routes:
    def __init__(
        self, hub: Hub, registry: CollectorRegistry, token: str | None, daily_budget_usd: float | None = None
    ) -> None:
        self.hub = hub
        self.daily_budget_usd = daily_budget_usd
        self.registry = registry
        self.token = token
        self.cache = BodyCache()
        self.otlp: ExporterStatus | None = None  # the OTLP export, when one runs

    def _snapshot(self) -> Snapshot:
        snapshot = self.hub.current
        if snapshot is None:
            raise NotReady("the first scan of the store is still running; retry shortly", {"Retry-After": "1"})
        return snapshot

    def _cached(
        self, request: Request, route: str, media_type: str, build: Callable[[Snapshot], bytes], moving: bool = False
    ) -> Response:
        """The body for (route, revision, query), its ETag and 304. Call after validating the query
        (an invalid one is a 400 whatever ``If-None-Match`` says). ``moving``: the answer depends on
        the request's time (``?active=``), so it is built per request and tagged by its content."""
        snapshot = self._snapshot()
        query = request.url.query
        if moving:
            body = build(snapshot)
            etag = '"' + hashlib.blake2s(body, digest_size=8).hexdigest() + '"'
        else:
            tag_key = f"{route}|{snapshot.revision}|{query}".encode()
            etag = '"' + hashlib.blake2s(tag_key, digest_size=8).hexdigest() + '"'
        headers = {**NO_CACHE, "ETag": etag}
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        if not moving:
            body = self.cache.get((route, snapshot.revision, query), lambda: build(snapshot))
        if len(body) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
            # Compressed once per revision, not per request (GZipMiddleware passes it through, so
            # Vary is set here; for an identity body of this size GZipMiddleware sets it).
            zipped = (
                gzip.compress(body, 6)
                if moving
                else self.cache.get((route + "+gzip", snapshot.revision, query), lambda: gzip.compress(body, 6))
            )
            encoded = {**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            return Response(zipped, media_type=media_type, headers=encoded)
        return Response(body, media_type=media_type, headers=headers)

    @staticmethod
    def _query(request: Request) -> SessionQuery:
        try:
            return parse_query(_params(request))
        except QueryError as exc:
            raise BadRequest(str(exc), param=exc.param, allowed=exc.allowed) from None

    async def sessions(self, request: Request) -> Response:
        query = self._query(request)

        def build(snapshot: Snapshot) -> bytes:
            rows, matched = select(snapshot.rows, query, time.time() * 1000.0)
            body = {
                "sessions": rows,
                "totals": snapshot.totals,
                "matched": matched,
                "revision": snapshot.revision,
                "generatedAt": iso_ms(snapshot.generated_ms),
            }
            return _encoder.encode(body)

        return self._cached(request, "sessions", "application/json", build, query.active_min is not None)

    async def sessions_csv(self, request: Request) -> Response:
        query = self._query(request)

        def build(snapshot: Snapshot) -> bytes:
            return sessions_csv(select(snapshot.rows, query, time.time() * 1000.0)[0]).encode()

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

        def build(snapshot: Snapshot) -> bytes:
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
            return _encoder.encode(body)

        return self._cached(request, f"usage@{minute}", "application/json", build)

    async def usage_csv(self, request: Request) -> Response:
        by, since, until = self._usage_query(request)

        def build(snapshot: Snapshot) -> bytes:
            return usage_csv(snapshot.usage(by, since, until), by).encode()

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
            "sessions": len(snapshot.rows),
            "eventClients": len(self.hub.subscribers),
            "eventClientsDropped": self.hub.dropped_total,
            "auth": self.token is not None,
        }
        return Response(_encoder.encode(body), media_type="application/json", headers=NO_CACHE)

    async def metrics(self, request: Request) -> Response:
        no_query(request)
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST, headers=NO_CACHE)


def no_query(request: Request, allowed: frozenset[str] = frozenset()) -> None:
    """A route without parameters refuses any (the README promises 400, not a silent ignore)."""
    for name in request.query_params:
        if name not in allowed:
            raise BadRequest(f"invalid parameter '{name}': this route takes no query parameters", param=name)
