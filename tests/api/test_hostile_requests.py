"""Hostile and odd requests: DNS rebinding, credential-less /healthz, double decoding, stale
time windows behind a 304, validation before conditional answers, one JSON error shape."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SMALL_STATE
from tests.servers import client_for, start_server, stop_server

STATE = SMALL_STATE


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:18780", "127.0.0.1.nip.io", ""])
def test_foreign_host_header_is_refused(host: str) -> None:
    with client_for(STATE) as client:
        response = client.get("/api/sessions", headers={"Host": host})
    assert response.status_code == 421
    assert response.json() == {"ok": False, "error": response.json()["error"], "status": 421}
    assert "sessions" not in response.text


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:18780", "localhost:8080", "[::1]:18780", "LOCALHOST"])
def test_loopback_host_headers_pass(host: str) -> None:
    with client_for(STATE) as client:
        assert client.get("/api/sessions", headers={"Host": host}).status_code == 200


def test_configured_host_names_pass() -> None:
    with client_for(STATE, allowed_hosts=("stats.internal",)) as client:
        assert client.get("/api/sessions", headers={"Host": "stats.internal:443"}).status_code == 200
        assert client.get("/api/sessions", headers={"Host": "other.internal"}).status_code == 421


def test_healthz_without_credentials_says_only_the_status() -> None:
    with client_for(STATE, token="s3cret") as client:
        anonymous = client.get("/healthz")
        wrong = client.get("/healthz", headers={"Authorization": "Bearer nope"})
        full = client.get("/healthz", headers={"Authorization": "Bearer s3cret"})
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ok"}
    assert wrong.json() == {"status": "ok"}
    assert str(STATE) not in anonymous.text and "agent" not in anonymous.text
    assert "skippedByFile" in full.json() and full.json()["sessions"] == 9


def test_key_with_a_percent_sign_is_decoded_once(small_state: Path) -> None:
    index = small_state / "agents/main/sessions/sessions.json"
    rows = json.loads(index.read_text())
    rows["agent:main:100%25done"] = rows.pop("agent:main:main")  # a real row under a key with "%25"
    index.write_text(json.dumps(rows))
    # A real server: Starlette's TestClient itself decodes the path twice, uvicorn once.
    server = start_server(["serve", "--state-dir", str(small_state), "--no-cache"])
    try:
        response = httpx.get(server.url + "/api/sessions/agent%3Amain%3A100%2525done")
        plain = httpx.get(server.url + "/api/sessions/agent:main:100%2525done")
    finally:
        stop_server(server)
    assert response.status_code == 200, response.text
    assert response.json()["row"]["key"] == "agent:main:100%25done"
    assert plain.status_code == 200


def test_refused_cors_preflight_is_the_json_error() -> None:
    with client_for(STATE, cors_origins=("http://dash.example",)) as client:
        refused = client.options(
            "/api/sessions", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
        )
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/json")
    body = refused.json()
    assert body["ok"] is False and body["status"] == 400 and "origin" in body["error"].lower()


@pytest.mark.parametrize("gzip", [True, False])
def test_vary_lists_each_header_once(gzip: bool) -> None:
    headers = {"Origin": "http://dash.example", "Accept-Encoding": "gzip" if gzip else "identity"}
    with client_for(STATE, cors_origins=("http://dash.example",)) as client:
        for path in ("/api/sessions", "/api/usage", "/api/sessions?limit=1"):
            response = client.get(path, headers=headers)
            parts = [p.strip().lower() for v in response.headers.get_list("vary") for p in v.split(",")]
            assert len(parts) == len(set(parts)), (path, parts)
            assert "origin" in parts
            if response.headers.get("content-encoding") == "gzip" or len(response.content) >= 1024:
                assert "accept-encoding" in parts, (path, parts)


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/api/events", "/api/alerts"])
def test_unknown_query_parameters_are_refused(path: str) -> None:
    with client_for(STATE) as client:
        response = client.get(path + "?nope=1")
    assert response.status_code == 400
    assert response.json()["status"] == 400 and response.json()["ok"] is False


def test_invalid_query_is_400_even_with_a_matching_etag() -> None:
    with client_for(STATE) as client:
        revision = client.get("/api/sessions").json()["revision"]
        query = "limit=abc"
        # The tag this server computes for (route, revision, query): a cached client may hold it.
        digest = hashlib.blake2s(f"sessions|{revision}|{query}".encode(), digest_size=8).hexdigest()
        response = client.get("/api/sessions?" + query, headers={"If-None-Match": f'"{digest}"'})
    assert response.status_code == 400


def test_active_window_moves_with_the_clock() -> None:
    """``?active=N`` is relative to the request's time: same snapshot, later request, other answer."""
    with client_for(STATE) as client:
        rows = client.get("/api/sessions").json()["sessions"]
        newest = max(r["updatedAtMs"] for r in rows)
        # A window that includes the newest row now and excludes it about a second later.
        minutes = (time.time() * 1000 - newest + 1000) / 60_000
        first = client.get(f"/api/sessions?active={minutes!r}")
        assert first.json()["matched"] >= 1
        deadline = time.monotonic() + 10
        later = first
        while time.monotonic() < deadline:
            later = client.get(f"/api/sessions?active={minutes!r}", headers={"If-None-Match": first.headers["etag"]})
            if later.status_code == 200 and later.json()["matched"] < first.json()["matched"]:
                break
            time.sleep(0.1)
        assert later.status_code == 200, "a poller got 304 on a window that moved"
        assert later.json()["matched"] < first.json()["matched"]
        assert later.headers["etag"] != first.headers["etag"]


def test_stop_with_an_open_event_stream_is_clean(small_state: Path) -> None:
    import signal
    import subprocess
    import sys
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-m", "clawstats", "serve", "--state-dir", str(small_state), "--no-cache", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    url = proc.stdout.readline().split(" on ")[1].split()[0]
    deadline = time.monotonic() + 20
    while httpx.get(url + "/healthz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    opened = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream("GET", url + "/api/events", timeout=20) as response:
                for _ in response.iter_bytes():
                    opened.set()
        except httpx.HTTPError:
            pass

    threading.Thread(target=listen, daemon=True).start()
    assert opened.wait(10)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert "ERROR" not in err and "without completing response" not in err, err


@pytest.mark.parametrize("query", ["since=2026-13-45", "until=2026-02-30", "since=2026-11-24T25:00:00Z"])
def test_impossible_days_are_400(query: str) -> None:
    with client_for(STATE) as client:
        for route in ("/api/usage", "/api/usage.csv"):
            response = client.get(f"{route}?{query}")
            assert response.status_code == 400, (route, response.text)
            assert response.json()["param"] == query.split("=")[0]
