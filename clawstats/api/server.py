"""``clawstats serve``: checks, the startup line, and uvicorn (graceful on SIGINT/SIGTERM)."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Mapping

import uvicorn

from clawstats import __version__
from clawstats.api.app import create_app
from clawstats.api.auth import MAX_HEADER_BYTES, is_loopback
from clawstats.settings import IOFailure, Settings, UsageError
from clawstats.watch.engine import describe_layouts, open_store
from clawstats.watch.store import StatsStore, tune_allocator

SEND_BUFFER_BYTES = 256 * 1024


def check_bind(settings: Settings) -> str | None:
    """An error sentence when the bind is unsafe, else None."""
    if not is_loopback(settings.host) and not settings.token and not settings.insecure_no_auth:
        return (
            f"refusing to bind {settings.host} without a token: set --token (or CLAWSTATS_TOKEN), "
            "bind 127.0.0.1, or pass --insecure-no-auth"
        )
    return None


def check_otlp(settings: Settings) -> str | None:
    if not settings.otlp_endpoint:
        return None
    try:
        import opentelemetry.sdk.metrics  # noqa: F401
        from opentelemetry.exporter.otlp.proto.http import metric_exporter  # noqa: F401
    except ImportError:
        return "--otlp-endpoint needs the OpenTelemetry extra: pip install 'clawstats[otlp]'"
    return None


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the proto
    # says TCP; with proto 0, Nagle + delayed ACKs added ~40 ms to every response (no uvloop).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit it: bounded kernel memory per client (autotuning could give a
    # stalled event-stream client megabytes), and a stalled client blocks soon, gets dropped.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    sock.bind((host.strip("[]"), port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_app(settings: Settings, store: StatsStore, label: str = "serving") -> int:
    """Bind, print the startup line (with the real port), serve until SIGINT/SIGTERM."""
    tune_allocator()  # before the first scan (it runs in the app)
    try:
        sock = bind_socket(settings.host, settings.port)
    except OSError as exc:
        raise IOFailure(f"cannot bind {settings.host}:{settings.port}: {exc.strerror or exc}") from None
    port = sock.getsockname()[1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    cors = ",".join(settings.cors_origins) or "off"
    sys.stdout.write(
        f"clawstats {__version__} {label} {store.state_dir} ({describe_layouts(store)}) "
        f"on http://{host}:{port} auth={'on' if settings.token else 'off'} cors={cors}\n"
    )
    sys.stdout.flush()
    app = create_app(settings, store)
    config = uvicorn.Config(
        app,
        log_level="warning",
        log_config=None,  # uvicorn's loggers propagate to ours: one line format (``cli.LOG_FORMAT``)
        access_log=False,
        lifespan="on",
        http="h11",  # h11 enforces the header limit below (httptools has none of its own)
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_graceful_shutdown=3,
        server_header=False,
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal with the
    # previous handlers restored. Make those unwind the stack (so callers' cleanup runs, e.g.
    # the demo's temporary dir) and exit 0: a requested stop is a clean stop.
    # SIGHUP (the terminal closed) is a stop request too: uvicorn does not handle it, and its
    # default action would end the process at once (exit 129, the demo's temp dir left behind).
    previous = signal.signal(signal.SIGTERM, _stop_requested)
    previous_hup = signal.signal(signal.SIGHUP, _hang_up)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except (KeyboardInterrupt, _StopRequested):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGHUP, previous_hup)
    return 0


def _hang_up(_signum: int, _frame: object) -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown, as for SIGTERM


class _StopRequested(Exception):
    pass


def _stop_requested(_signum: int, _frame: object) -> None:
    raise _StopRequested


def serve(settings: Settings, env: Mapping[str, str]) -> int:
    """Raises UsageError (unsafe bind, missing extra), AlertConfigError, IOFailure (bind)."""
    problem = check_bind(settings) or check_otlp(settings)
    settings.alert_rules()  # AlertConfigError (one sentence) before anything starts
    if problem:
        raise UsageError(problem)
    return run_app(settings, served_store(settings, env))


def served_store(settings: Settings, env: Mapping[str, str]) -> StatsStore:
    """The server's store: it follows new agents, and reads never-read files in worker processes
    as the CLI does (forked from the scanning thread, they only read files and return images):
    in one process a first read of 50,000 sessions took the CLI's two-core time twice over."""
    return open_store(settings, env, workers=os.cpu_count() or 1, follow=True)
