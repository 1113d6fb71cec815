"""A real server process on a loopback port: live updates over SSE and polling, metrics."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from queue import Queue
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import OPS_TRANSCRIPT
from tests.core.lines import assistant_line
from tests.servers import LiveServer, next_event, sse_events, start_server, stop_server

DEADLINE_S = 10.0


def test_append_arrives_as_sse_event_and_in_polling(live_server: tuple[LiveServer, Path]) -> None:
    server, state = live_server
    before = httpx.get(server.url + "/api/sessions").json()
    old = next(r for r in before["sessions"] if r["key"] == "agent:ops:incident-long")
    out: Queue[tuple[str, dict[str, Any]]] = Queue()
    stop = threading.Event()
    reader = threading.Thread(target=sse_events, args=(server.url + "/api/events", out, stop, {}), daemon=True)
    reader.start()
    snapshot = next_event(out, "snapshot")
    assert len(snapshot["sessions"]) == len(before["sessions"])
    with open(state / OPS_TRANSCRIPT, "ab") as fh:
        fh.write(assistant_line(0.5, 27000))
    delta = next_event(out, "sessions")
    polled = httpx.get(server.url + "/api/sessions?agent=ops").json()["sessions"][0]
    stop.set()
    server.proc.terminate()
    reader.join(timeout=10)
    assert [r["key"] for r in delta["sessions"]] == ["agent:ops:incident-long"]
    row = delta["sessions"][0]
    assert math.isclose(row["totalCost"], old["totalCost"] + 0.5, abs_tol=1e-9)
    assert row["contextTokens"] == 27000 and row["contextSource"] == "transcript"
    assert math.isclose(delta["totals"]["totalCost"], before["totals"]["totalCost"] + 0.5, abs_tol=1e-9)
    assert polled == row


def test_index_replaced_like_openclaw_shows_model_switch(live_server: tuple[LiveServer, Path]) -> None:
    server, state = live_server
    path = state / "agents/main/sessions/sessions.json"
    doc = json.loads(path.read_text())
    doc["agent:main:travel-long"].update(model="mock-small", contextTokens=32000)
    (path.parent / "sessions.json.lock").write_text('{"pid": 1}')
    tmp = path.with_name("sessions.json.4242.0000.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        row = httpx.get(server.url + "/api/sessions/agent:main:travel-long").json()["row"]
        if row["model"] == "mock/mock-small":
            break
        time.sleep(0.05)
    assert row["model"] == "mock/mock-small" and row["contextWindow"] == 32000 and row["contextPct"] == 59


def test_metrics_agree_with_api(live_server: tuple[LiveServer, Path]) -> None:
    server, _ = live_server
    sessions = httpx.get(server.url + "/api/sessions").json()
    text = httpx.get(server.url + "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    ctx = {s.labels["session_key"]: s.value for s in families["openclaw_context_tokens"].samples}
    for row in sessions["sessions"]:
        if not row["archived"]:
            assert ctx[row["key"]] == row["contextTokens"]
    cost = sum(s.value for s in families["openclaw_cost_usd"].samples if s.name == "openclaw_cost_usd_total")
    assert math.isclose(cost, sessions["totals"]["totalCost"], abs_tol=1e-9)
    tokens = sum(s.value for s in families["openclaw_tokens"].samples if s.name == "openclaw_tokens_total")
    assert tokens == sessions["totals"]["usage"]["total"]


def test_sigterm_is_graceful_and_persists_the_index(small_state: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    server = start_server(["serve", "--state-dir", str(small_state), "--cache-dir", str(cache_dir)])
    with open(small_state / OPS_TRANSCRIPT, "ab") as fh:
        fh.write(assistant_line(0.25, 1000))
    deadline = time.monotonic() + DEADLINE_S
    while httpx.get(server.url + "/api/sessions?agent=ops").json()["sessions"][0]["contextTokens"] != 1000:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server.proc.terminate()
    assert server.proc.wait(timeout=10) == 0  # a requested stop is a clean stop
    stop_server(server)
    (database,) = cache_dir.glob("index-*.sqlite")
    with sqlite3.connect(database) as db:
        offset = db.execute("SELECT offset FROM files WHERE path LIKE ?", ("%" + OPS_TRANSCRIPT,)).fetchone()[0]
    assert offset == (small_state / OPS_TRANSCRIPT).stat().st_size
