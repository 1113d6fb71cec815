"""``create_app``: the Starlette application, its middleware and its lifespan (the poller)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from clawstats.api.alerts import AlertManager
from clawstats.api.auth import HostCheck, JsonCORSMiddleware, RequestLimits, TokenAuth, allowed_hosts
from clawstats.api.errors import ApiError, api_error_handler, http_error_handler
from clawstats.api.events import Hub
from clawstats.api.otlp import otlp_http_export
from clawstats.api.routes import STATIC, Routes
from clawstats.settings import Settings
from clawstats.watch.alert_state import AlertStateFile
from clawstats.watch.poller import Poller
from clawstats.watch.store import StatsStore

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry


class SessionKeyConvertor(Convertor[str]):
    """A session key in a path: any characters, newlines included (``path`` stops at one)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("sessionkey", SessionKeyConvertor())


def create_app(
    settings: Settings,
    store: StatsStore | None,
    hub: Hub | None = None,
    watch: bool = True,
) -> Starlette:
    """The app; with a ``store`` its lifespan runs the poller (``None``: the caller publishes)."""
    hub = hub or Hub(queue_size=max(1, settings.events_queue_size))

    def registry() -> CollectorRegistry:
        from clawstats.api.metrics import make_registry  # (the Prometheus client: at the first scrape)

        return make_registry(lambda: hub.current, settings.metrics_active_minutes)

    alert_state = None
    if store is not None and store.cache is not None and store.cache.available:  # else: warned about once
        alert_state = AlertStateFile(store.cache.path)
    rules = settings.alert_rules()
    alerts = AlertManager(hub, rules, alert_state)
    routes = Routes(hub, registry, settings.token, alerts, daily_budget_usd=rules.daily_budget_usd)

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
            await asyncio.to_thread(store.close)  # after the poller's last flush
            await alerts.sender.stop()
            if alerts.state is not None:
                alerts.state.close()
            if export is not None:
                await asyncio.to_thread(export.shutdown)  # flushes the last export

    app = Starlette(
        routes=[
            Route("/", routes.index),
            Route("/api/sessions", routes.sessions),
            Route("/api/sessions.csv", routes.sessions_csv),
            Route("/api/sessions/{key:sessionkey}", routes.session),
            Route("/api/usage", routes.usage),
            Route("/api/usage.csv", routes.usage_csv),
            Route("/api/events", routes.events),
            Route("/api/alerts", routes.alerts),
            Route("/metrics", routes.metrics),
            Route("/healthz", routes.healthz),
            Route("/openapi.json", routes.openapi),
            Route("/docs", routes.docs),
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
    app.state.routes = routes  # tests look at its body cache
    return app
