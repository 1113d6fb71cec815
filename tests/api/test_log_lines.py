"""The server's stderr: every log line, uvicorn's included, in one timestamped format; each warning once."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

#: ``2026-12-01T17:05:00.123Z WARNING clawstats: ...``: UTC, milliseconds, level, logger.
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: \S")


def _serve_and_stop(small_state: Path, *extra: str) -> str:
    """Run ``clawstats serve``, send one request uvicorn rejects, stop it; its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "clawstats", "serve", "--state-dir", str(small_state), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        url = proc.stdout.readline().split(" on ")[1].split()[0]
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            status = httpx.get(url + "/healthz").status_code
            if status in (200, 503):  # ready (503: degraded, which these states are)
                break
            time.sleep(0.05)
        assert status in (200, 503), f"never ready; last /healthz status {status}"
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")  # uvicorn logs "Invalid HTTP request received."
            sock.recv(4096)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        return proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_every_line_has_one_timestamped_format_uvicorns_included(small_state: Path, tmp_path: Path) -> None:
    transcript = next((small_state / "agents").glob("*/sessions/*.jsonl"))
    with transcript.open("ab") as out:
        out.write(b"this line is not JSON\n")  # clawstats warns: skipped malformed
    err = _serve_and_stop(small_state, "--cache-dir", str(tmp_path / "cache"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, err
    assert [line for line in lines if not LINE.match(line)] == [], err
    assert sum("uvicorn.error: Invalid HTTP request received." in line for line in lines) == 1, err
    assert sum("clawstats: skipped malformed in " in line for line in lines) == 1, err


def test_an_unavailable_cache_is_one_warning(small_state: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache dir should be")
    err = _serve_and_stop(small_state, "--cache-dir", str(blocker / "cache"))
    cache_lines = [line for line in err.splitlines() if "index cache unavailable" in line]
    assert len(cache_lines) == 1, err
    assert LINE.match(cache_lines[0]) and "WARNING" in cache_lines[0], err
