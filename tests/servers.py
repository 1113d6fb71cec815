"""Servers for tests: in-process apps (TestClient) and a real server subprocess on a free port."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


class LiveServer:
    def __init__(self, proc: subprocess.Popen[str], url: str, startup: str) -> None:
        self.proc = proc
        self.url = url
        self.startup = startup


def start_server(args: list[str], env: dict[str, str] | None = None, timeout_s: float = 30.0) -> LiveServer:
    errors = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "clawstats", *args, "--host", "127.0.0.1", "--port", "0"],
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
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return LiveServer(proc, url, line)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("server never became healthy")


def stop_server(server: LiveServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
    if server.proc.stdout is not None:
        server.proc.stdout.close()
