"""The install paths a user takes, tried as that user would: the built wheel in a clean venv with
no extras, with the ``otlp`` extra, and through ``pipx``; every module of the installed package
imports, and ``sessions``, ``serve`` and ``demo`` run from it and serve the rows this checkout's
engine reads from the same data.

One wheel is built per test session (from a copy of the sources, so the checkout gains no
``build/`` or ``*.egg-info``); each venv is new, pip may use its local cache and index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REAL_SQLITE, SMALL_STATE
from tests.servers import LiveServer, start_server, stop_server

ROOT = Path(__file__).parent.parent
INSTALL_TIMEOUT_S = 600
pytestmark = pytest.mark.timeout(900)

_IMPORT_ALL = """
import importlib, json, pathlib, clawstats
root = pathlib.Path(clawstats.__file__).parent
# Every .py file (clawstats.core and .watch are namespace packages, which pkgutil does not walk);
# not __main__, importing it runs the CLI.
names = sorted(
    ".".join(("clawstats", *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
    for p in root.rglob("*.py") if p.name != "__main__.py"
)
for name in names:
    importlib.import_module(name)
print(json.dumps({"file": clawstats.__file__, "modules": names}))
"""


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 120) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _user_env(home: Path) -> dict[str, str]:
    """A plain user's environment: no PYTHONPATH or venv of ours, a home and cache of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CLAWSTATS_"))}
    env["HOME"] = str(home)
    env["CLAWSTATS_CACHE_DIR"] = str(home / "clawstats-cache")
    home.mkdir(parents=True, exist_ok=True)
    return env


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "clawstats", src / "clawstats", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)], src, None, 300)
    (built,) = out.glob("clawstats-*.whl")
    return built


def _venv(wheel: Path, where: Path, spec: str) -> Path:
    _run([sys.executable, "-m", "venv", str(where)], where.parent)
    env = _user_env(where.parent / "home")
    _run(
        [str(where / "bin" / "python"), "-m", "pip", "install", "-q", spec.format(wheel=wheel)],
        where.parent,
        env,
        INSTALL_TIMEOUT_S,
    )
    return where / "bin"


@pytest.fixture(scope="session")
def plain_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(wheel, tmp_path_factory.mktemp("plain") / "venv", "{wheel}")


@pytest.fixture(scope="session")
def otlp_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(wheel, tmp_path_factory.mktemp("otlp") / "venv", "clawstats[otlp] @ file://{wheel}")


def _engine_rows(state: Path) -> dict[str, Any]:
    """The rows this checkout's engine reads (what ``make demo`` serves) from ``state``."""
    out = _run([sys.executable, "-m", "clawstats", "sessions", "--json", "--no-cache", "--state-dir", str(state)], ROOT)
    body = json.loads(out)
    assert body["sessions"], "the fixture has sessions"
    return {"sessions": body["sessions"], "totals": body["totals"]}


def _first_snapshot(url: str) -> dict[str, Any]:
    """The first ``snapshot`` event of ``/api/events``, read as a browser's EventSource would."""
    name = ""
    with httpx.stream("GET", url + "/api/events", timeout=10.0) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name == "snapshot":
                body: dict[str, Any] = json.loads(line.split(":", 1)[1])
                return body
    raise AssertionError("the event stream ended without a snapshot")


def _check_installed(bindir: Path, home: Path, states: list[Path]) -> None:
    env = _user_env(home)
    imported = json.loads(_run([str(bindir / "python"), "-c", _IMPORT_ALL], home, env))
    assert imported["file"].startswith(str(bindir.parent)), imported["file"]
    assert "clawstats.api.alerts" in imported["modules"] and "clawstats.watch.sqlite_store" in imported["modules"]
    _run([str(bindir / "python"), "-m", "pip", "check"], home, env)
    for state in states:
        expected = _engine_rows(state)
        cmd = [str(bindir / "clawstats"), "sessions", "--json", "--state-dir", str(state)]
        body = json.loads(_run(cmd, home, env))
        assert {"sessions": body["sessions"], "totals": body["totals"]} == expected
        server = start_server(["serve", "--state-dir", str(state)], env=env, command=[str(bindir / "clawstats")])
        try:
            _check_serving(server, expected)
        finally:
            stop_server(server)
        assert server.proc.returncode == 0


def _check_serving(server: LiveServer, expected: dict[str, Any]) -> None:
    sessions = httpx.get(server.url + "/api/sessions", timeout=10.0).json()
    assert {"sessions": sessions["sessions"], "totals": sessions["totals"]} == expected
    snapshot = _first_snapshot(server.url)
    assert {"sessions": snapshot["sessions"], "totals": snapshot["totals"]} == expected
    metrics = httpx.get(server.url + "/metrics", timeout=10.0)
    assert metrics.status_code == 200
    assert "openclaw_cost_usd_total{" in metrics.text and "clawstats_up 2.0" in metrics.text


def _check_demo(bindir: Path, home: Path) -> None:
    server = start_server(["demo", "--speed", "20"], env=_user_env(home), command=[str(bindir / "clawstats")])
    try:
        body = httpx.get(server.url + "/api/sessions", timeout=10.0).json()
        assert body["sessions"], body
        assert httpx.get(server.url + "/metrics", timeout=10.0).status_code == 200
    finally:
        stop_server(server)
    assert server.proc.returncode == 0


def test_wheel_without_extras(plain_venv: Path, tmp_path: Path) -> None:
    shutil.copytree(SMALL_STATE, tmp_path / "file-state")
    shutil.copytree(REAL_SQLITE / "state", tmp_path / "sqlite-state")
    _check_installed(plain_venv, tmp_path / "home", [tmp_path / "file-state", tmp_path / "sqlite-state"])
    _check_demo(plain_venv, tmp_path / "home")
    # No extra means no OpenTelemetry: asking for OTLP says what to install and exits 2.
    env = _user_env(tmp_path / "home")
    cmd = [str(plain_venv / "clawstats"), "serve", "--state-dir", str(tmp_path / "file-state")]
    done = subprocess.run(
        [*cmd, "--port", "0", "--otlp-endpoint", "http://127.0.0.1:9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "clawstats[otlp]" in done.stderr, (done.returncode, done.stderr)


class _Receiver(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.paths = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_wheel_with_otlp_extra(otlp_venv: Path, tmp_path: Path, receiver: str) -> None:
    shutil.copytree(SMALL_STATE, tmp_path / "file-state")
    _check_installed(otlp_venv, tmp_path / "home", [tmp_path / "file-state"])
    _check_demo(otlp_venv, tmp_path / "home")
    args = [
        "serve",
        "--state-dir",
        str(tmp_path / "file-state"),
        "--otlp-endpoint",
        receiver,
        "--otlp-interval-s",
        "0.2",
    ]
    server = start_server(args, env=_user_env(tmp_path / "home"), command=[str(otlp_venv / "clawstats")])
    try:
        deadline = time.monotonic() + 15.0
        while "/v1/metrics" not in _Receiver.paths and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "/v1/metrics" in _Receiver.paths, f"no OTLP export; received {_Receiver.paths}"
    finally:
        stop_server(server)


@pytest.mark.skipif(shutil.which("pipx") is None, reason="pipx is not installed (make system-deps installs it)")
def test_pipx_install(wheel: Path, tmp_path: Path) -> None:
    env = _user_env(tmp_path / "home")
    env["PIPX_HOME"] = str(tmp_path / "pipx")
    env["PIPX_BIN_DIR"] = str(tmp_path / "bin")
    _run(["pipx", "install", str(wheel)], tmp_path, env, INSTALL_TIMEOUT_S)
    shutil.copytree(SMALL_STATE, tmp_path / "file-state")
    cmd = [str(tmp_path / "bin" / "clawstats"), "sessions", "--json", "--state-dir", str(tmp_path / "file-state")]
    body = json.loads(_run(cmd, tmp_path, env))
    assert {"sessions": body["sessions"], "totals": body["totals"]} == _engine_rows(tmp_path / "file-state")
    assert _run([str(tmp_path / "bin" / "clawstats"), "--version"], tmp_path, env).strip()
