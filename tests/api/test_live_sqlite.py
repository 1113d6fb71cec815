"""``clawstats serve`` on a live WAL database written by another process (OpenClaw >= 2026.8)."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Queue
from typing import Any

import httpx

from tests.conftest import REAL_SQLITE
from tests.servers import next_event, sse_events, start_server, stop_server

WRITER = Path(__file__).parent.parent.parent / "bench" / "sqlite_writer.py"


def test_writer_process_changes_arrive_and_writer_never_busy(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    server = start_server(["serve", "--state-dir", str(state), "--no-cache", "--poll-interval-s", "0.2"])
    out: Queue[tuple[str, dict[str, Any]]] = Queue()
    stop = threading.Event()
    reader = threading.Thread(target=sse_events, args=(server.url + "/api/events", out, stop, {}), daemon=True)
    try:
        before = httpx.get(server.url + "/api/sessions?agent=ops&q=quick").json()["sessions"][0]
        reader.start()
        next_event(out, "snapshot")
        database = state / "agents/ops/agent/openclaw-agent.sqlite"
        writer = subprocess.run(
            [sys.executable, str(WRITER), str(database), "--events", "40", "--interval-s", "0.01", "--cost", "0.5"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert writer.returncode == 0, writer.stderr  # 3 would mean SQLITE_BUSY
        deadline = time.monotonic() + 10
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            event = next_event(out, "sessions")
            rows = [r for r in event["sessions"] if r["key"] == "agent:ops:quick"]
            if rows and rows[0]["contextTokens"] == 20000 and rows[0]["contextSource"] == "snapshot":
                row = rows[0]
                break
        assert math.isclose(row["totalCost"], before["totalCost"] + 40 * 0.5, abs_tol=1e-9)
        polled = httpx.get(server.url + "/api/sessions?agent=ops&q=quick").json()["sessions"][0]
        assert polled == row
        health = httpx.get(server.url + "/healthz").json()
        assert health["status"] == "ok" and health["layouts"] == {"main": "sqlite", "ops": "sqlite"}
    finally:
        stop.set()
        stop_server(server)
        reader.join(timeout=10)
