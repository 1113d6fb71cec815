"""``create_app``: the Starlette application, its middleware and its lifespan (the poller)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path

import anyio
import msgspec
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from clawstats.api.alerts import AlertManager
from clawstats.api.auth import HostCheck, JsonCORSMiddleware, RequestLimits, TokenAuth, allowed_hosts
from clawstats.api.errors import ApiError, api_error_handler, http_error_handler
from clawstats.api.events import Hub
from clawstats.api.metrics import make_registry
from clawstats.api.openapi import build_spec
from clawstats.api.otlp import otlp_http_export
from clawstats.api.routes import NO_CACHE, Routes, no_query
from clawstats.settings import Settings
from clawstats.watch.cache import AlertStateFile
from clawstats.watch.poller import Poller
from clawstats.watch.store import StatsStore

_encoder = msgspec.json.Encoder()
STATIC = Path(str(files("clawstats") / "static"))
HEARTBEAT_S = 15.0
SEND_TIMEOUT_S = 10.0
#: How long a stream may take to end by itself at shutdown (under uvicorn's 3 s graceful limit).
SHUTDOWN_GRACE_S = 1.0


class SessionKeyConvertor(Convertor[str]):
    """A session key in a path: any characters, newlines included (``path`` stops at one)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("sessionkey", SessionKeyConvertor())


def _docs_page(spec: dict[str, object]) -> str:
    paths = spec["paths"]
    assert isinstance(paths, dict)
    items = "".join(f"<li><code>GET {path}</code>: {op['get']['summary']}</li>" for path, op in paths.items())
    return (
        "<!doctype html><meta charset=utf-8><title>clawstats API</title>"
        "<h1>clawstats API</h1><p>Machine-readable: <a href=/openapi.json>/openapi.json</a></p>"
        f"<ul>{items}</ul>"
    )


def create_app(
    settings: Settings,
    store: StatsStore | None,
    hub: Hub | None = None,
    watch: bool = True,
) -> Starlette:
    """The app; with a ``store`` its lifespan runs the poller (``None``: the caller publishes)."""
    hub = hub or Hub(queue_size=max(1, settings.events_queue_size))
    registry = make_registry(lambda: hub.current, settings.metrics_active_minutes)
    alert_state = None
    if store is not None and store.cache is not None:
        alert_state = AlertStateFile(store.cache.path)
    rules = settings.alert_rules()
    alerts = AlertManager(hub, rules, alert_state)
    routes = Routes(hub, registry, settings.token, daily_budget_usd=rules.daily_budget_usd)
    spec = build_spec()

    async def events(request: Request) -> Response:
        no_query(request, allowed=frozenset({"token"}))
        last = request.headers.get("last-event-id")
        shutdown = anyio.Event()  # set by sse-starlette when the server stops: the stream ends
        return EventSourceResponse(
            hub.stream(last, shutdown),
            ping=HEARTBEAT_S,
            send_timeout=SEND_TIMEOUT_S,
            shutdown_event=shutdown,
            shutdown_grace_period=SHUTDOWN_GRACE_S,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def alerts_route(request: Request) -> Response:
        no_query(request)
        return Response(_encoder.encode(alerts.listing()), media_type="application/json", headers=NO_CACHE)

    async def openapi(_request: Request) -> Response:
        return JSONResponse(spec)

    async def docs(_request: Request) -> Response:
        return HTMLResponse(_docs_page(spec))

    async def index(_request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if store is None:
            yield
            return
        stop = asyncio.Event()
        export = None
        if settings.otlp_endpoint:
            export = otlp_http_export(settings.otlp_endpoint, settings.otlp_interval_s, settings.metrics_active_minutes)
            hub.listeners.append(export.on_snapshot)
            routes.otlp = export.status
        hub.listeners.append(alerts.on_snapshot)
        alerts.sender.start()
        poller = Poller(store, hub.publish, settings.poll_interval_s, watch=watch)
        task = asyncio.create_task(poller.run(stop))
        try:
            yield
        finally:
            stop.set()
            hub.close_all()
            await task
            await alerts.sender.stop()
            if alerts.state is not None:
                alerts.state.close()
            if export is not None:
                await asyncio.to_thread(export.shutdown)  # flushes the last export

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/sessions", routes.sessions),
            Route("/api/sessions.csv", routes.sessions_csv),
            Route("/api/sessions/{key:sessionkey}", routes.session),
            Route("/api/usage", routes.usage),
            Route("/api/usage.csv", routes.usage_csv),
            Route("/api/events", events),
            Route("/api/alerts", alerts_route),
            Route("/metrics", routes.metrics),
            Route("/healthz", routes.healthz),
            Route("/openapi.json", openapi),
            Route("/docs", docs),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[
            Middleware(RequestLimits),
            Middleware(HostCheck, allowed=allowed_hosts(settings.host, settings.allowed_hosts)),
            Middleware(
                JsonCORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET"],
                allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
                expose_headers=["ETag"],
                max_age=600,
            ),
            Middleware(TokenAuth, token=settings.token),
            Middleware(GZipMiddleware, minimum_size=1024),
        ],
        exception_handlers={ApiError: api_error_handler, HTTPException: http_error_handler},
        lifespan=lifespan,
    )
    app.state.hub = hub
    return app
