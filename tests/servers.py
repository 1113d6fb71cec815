"""Servers for tests: in-process apps (TestClient) and a real server subprocess on a free port."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any, TypeVar

import httpx
from starlette.testclient import TestClient

from clawstats.api.app import create_app
from clawstats.settings import Settings
from clawstats.watch.engine import open_store


@contextlib.contextmanager
def client_for(state: Path, **settings: Any) -> Iterator[TestClient]:
    """An in-process client whose app has finished its first scan."""
    settings.setdefault("no_cache", True)
    app_settings = Settings(state_dir=str(state), **settings)
    app = create_app(app_settings, open_store(app_settings, {}), watch=False)
    # Host 127.0.0.1: the app answers only for the hosts it is bound to (DNS rebinding).
    with TestClient(app, base_url="http://127.0.0.1") as client:
        deadline = time.monotonic() + 10
        while client.get("/healthz").status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.01)
        yield client


T = TypeVar("T")


def wait_until(service: str, probe: Callable[[], T], ready: Callable[[T], bool], timeout_s: float) -> T:
    """Poll ``probe`` until ``ready`` accepts its answer; past ``timeout_s`` fail naming the service
    and the last answer (or error) seen, so a slow start reads differently from a broken one."""
    deadline = time.monotonic() + timeout_s
    last: str = "nothing yet"
    while True:
        try:
            answer = probe()
            if ready(answer):
                return answer
            last = repr(answer)[:500]
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            last = f"{type(exc).__name__}: {exc}"[:500]
        if time.monotonic() > deadline:
            raise AssertionError(f"{service} not ready after {timeout_s:g} s; last answer: {last}")
        time.sleep(0.1)


class LiveServer:
    def __init__(self, proc: subprocess.Popen[str], url: str, startup: str) -> None:
        self.proc = proc
        self.url = url
        self.startup = startup


def start_server(
    args: list[str], env: dict[str, str] | None = None, timeout_s: float = 30.0, command: list[str] | None = None
) -> LiveServer:
    """``command`` (default: this interpreter's ``-m clawstats``) serving on a free loopback port."""
    errors = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [*(command or [sys.executable, "-m", "clawstats"]), *args, "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        errors.seek(0)
        message = errors.read()
        errors.close()
        raise AssertionError(f"server did not start: {line!r} {message}")
    errors.close()
    url = line.split(" on ")[1].split()[0]

    def health() -> str:
        response = httpx.get(url + "/healthz", timeout=1.0)
        return str(response.status_code) if response.status_code == 200 else f"{response.status_code} {response.text}"

    try:
        wait_until(f"clawstats {url}/healthz", health, lambda seen: seen == "200", timeout_s)
    except AssertionError:
        proc.kill()
        proc.wait()
        raise
    return LiveServer(proc, url, line)


def stop_server(server: LiveServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
    if server.proc.stdout is not None:
        server.proc.stdout.close()


#: How long a test waits for one SSE event before failing with its name.
EVENT_DEADLINE_S = 10.0


def sse_events(
    url: str, out: Queue[tuple[str, dict[str, Any]]], stop: threading.Event, headers: dict[str, str]
) -> None:
    try:
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(30.0)) as response:
            name = None
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and name:
                    out.put((name, json.loads(line.split(":", 1)[1])))
    except httpx.HTTPError:
        if not stop.is_set():
            out.put(("error", {}))


def next_event(out: Queue[tuple[str, dict[str, Any]]], name: str) -> dict[str, Any]:
    deadline = time.monotonic() + EVENT_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            got, body = out.get(timeout=0.2)
        except Empty:
            continue
        if got == name:
            return body
    raise AssertionError(f"no {name} event within {EVENT_DEADLINE_S}s")


def served_cost(url: str, query: str, token: str | None = None) -> float:
    """The first row's ``totalCost`` of ``/api/sessions?<query>``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    rows = httpx.get(f"{url}/api/sessions?{query}", headers=headers, timeout=10.0).json()["sessions"]
    return float(rows[0]["totalCost"])


def wait_served_cost(url: str, query: str, want: float, token: str | None = None, timeout_s: float = 20.0) -> None:
    """Until the served cost of that row is ``want`` (to 1e-9)."""
    wait_until(
        f"clawstats {url} serving totalCost {want}",
        lambda: served_cost(url, query, token),
        lambda seen: abs(seen - want) <= 1e-9,
        timeout_s,
    )
