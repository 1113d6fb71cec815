"""Security: auth on every data route, safe binds, request limits, keys never touching the file
system, and no message text in any response, log line or metric."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from queue import Queue
from typing import Any

import httpx
import pytest

from clawstats.api.server import check_bind
from clawstats.settings import Settings
from tests.conftest import OPS_TRANSCRIPT
from tests.servers import next_event, sse_events, start_server, stop_server

MARKER = "SECRET-MARKER-7f3a9c"
TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_non_loopback_bind_needs_a_token() -> None:
    assert check_bind(Settings(host="127.0.0.1")) is None
    assert check_bind(Settings(host="::1")) is None
    assert check_bind(Settings(host="localhost")) is None
    assert "refusing" in (check_bind(Settings(host="0.0.0.0")) or "")
    assert check_bind(Settings(host="0.0.0.0", token="x")) is None
    assert check_bind(Settings(host="192.0.2.1", insecure_no_auth=True)) is None
    proc = subprocess.run(
        [sys.executable, "-m", "clawstats", "serve", "--host", "0.0.0.0", "--state-dir", "."],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "refusing to bind 0.0.0.0 without a token" in proc.stderr


def _plant_secrets(state: Path) -> None:
    """Put the marker in every kind of message content OpenClaw writes, plus a malformed line."""
    path = state / OPS_TRANSCRIPT
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    for entry in entries:
        message = entry.get("message")
        if entry["type"] == "compaction":
            entry["summary"] = f"summary {MARKER}"
        if not message:
            continue
        if message["role"] == "user":
            message["content"] = f"my password is {MARKER}"
        elif message["role"] == "assistant":
            message["content"] = [
                {"type": "thinking", "thinking": f"thinking about {MARKER}"},
                {"type": "text", "text": f"answer {MARKER}"},
                {"type": "toolCall", "id": "c1", "name": "read", "arguments": {"path": f"/{MARKER}"}},
            ]
    entries.append({"type": "message", "id": "x", "message": {"role": "toolResult", "content": f"result {MARKER}"}})
    text = "".join(json.dumps(e) + "\n" for e in entries) + f'{{"broken": "{MARKER}"\n'
    path.write_text(text)


def test_no_message_text_anywhere(small_state: Path) -> None:
    _plant_secrets(small_state)
    server = start_server(
        [
            "--log-level",
            "debug",
            "serve",
            "--state-dir",
            str(small_state),
            "--no-cache",
            "--token",
            TOKEN,
            "--alert-context-pct",
            "50",
        ],
    )
    bodies: list[str] = []
    out: Queue[tuple[str, dict[str, Any]]] = Queue()
    stop = threading.Event()
    reader = threading.Thread(target=sse_events, args=(server.url + "/api/events", out, stop, AUTH), daemon=True)
    try:
        reader.start()
        bodies.append(json.dumps(next_event(out, "snapshot")))
        for path in (
            "/api/sessions",
            "/api/sessions.csv",
            "/api/sessions/agent:ops:incident-long",
            "/api/usage?by=model",
            "/api/usage.csv?by=day",
            "/api/alerts",
            "/metrics",
            "/healthz",
            "/openapi.json",
            "/docs",
            "/",
        ):
            response = httpx.get(server.url + path, headers=AUTH)
            assert response.status_code == 200, path
            bodies.append(response.text)
        health = httpx.get(server.url + "/healthz", headers=AUTH).json()  # details need the token
        assert health["skipped"].get("malformed") == 1  # the planted broken line was seen, counted
    finally:
        stop.set()
        stop_server(server)
        reader.join(timeout=10)
    assert all(MARKER not in body for body in bodies)
    assert "agent:ops:incident-long" in bodies[1]  # the responses are real ones


def test_server_log_has_no_message_text(small_state: Path, tmp_path: Path) -> None:
    _plant_secrets(small_state)
    log = tmp_path / "server.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clawstats",
                "--log-level",
                "debug",
                "sessions",
                "--state-dir",
                str(small_state),
                "--no-cache",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "malformed" in log.read_text()  # the skip was logged...
    assert MARKER not in log.read_text() and MARKER not in out  # ...without the line's text


def test_every_data_route_needs_the_token(live_server: Any) -> None:
    server, _ = live_server
    # The fixture server has no token; start one that has.
    state = _
    secured = start_server(["serve", "--state-dir", str(state), "--no-cache", "--token", TOKEN])
    try:
        for path in (
            "/api/sessions",
            "/api/sessions.csv",
            "/api/sessions/agent:main:main",
            "/api/usage",
            "/api/usage.csv",
            "/api/alerts",
            "/api/events",
            "/metrics",
            "/openapi.json",
            "/docs",
        ):
            response = httpx.get(secured.url + path, timeout=5)
            assert response.status_code == 401, path
            assert response.json()["status"] == 401
        assert httpx.get(secured.url + "/healthz").status_code == 200
        with httpx.stream("GET", secured.url + f"/api/events?token={TOKEN}", timeout=5) as stream:
            assert stream.status_code == 200
    finally:
        stop_server(secured)


@pytest.mark.parametrize(
    "key",
    ["..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "agent%3Amain%3A..%2F..%2Fsessions.json", "%00", "a" * 3000],
)
def test_session_keys_never_touch_the_file_system(live_server: Any, key: str) -> None:
    server, _ = live_server
    response = httpx.get(server.url + "/api/sessions/" + key)
    assert response.status_code == 404
    assert response.json()["ok"] is False and "root:" not in response.text


def test_oversized_headers_are_refused(live_server: Any) -> None:
    server, _ = live_server
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /api/sessions HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 64_000 + b"\r\n\r\n")
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert reply.startswith(b"HTTP/1.1 431") or reply == b""
    assert httpx.get(server.url + "/api/sessions").status_code == 200  # and the server is fine


def test_listening_socket_is_tcp_with_nodelay() -> None:
    """Regression: a proto-0 socket made asyncio skip TCP_NODELAY (+40 ms per response)."""
    from clawstats.api.server import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()
