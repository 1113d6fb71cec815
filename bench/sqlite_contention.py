"""Does clawstats reading a live OpenClaw SQLite store slow the writer down?

    python bench/sqlite_contention.py [--events 300] [--interval-s 0.005]

Runs ``bench/sqlite_writer.py`` (busy_timeout 0: any contention is an error) on a copy of the
real 2026.9.6 fixture, alone and then with ``clawstats serve`` reading it (poll every 50 ms plus
file-system events, an SSE client attached), and prints the writer's commit latency for both.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "openclaw-real-sqlite" / "state"


def writer(database: Path, events: int, interval_s: float) -> list[float]:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "sqlite_writer.py"),
            str(database),
            "--events",
            str(events),
            "--interval-s",
            str(interval_s),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise SystemExit(f"writer failed ({proc.returncode}): {proc.stderr}")
    return json.loads(proc.stdout)


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return f"p50 {q(0.5):.3f} ms, p95 {q(0.95):.3f} ms, p99 {q(0.99):.3f} ms, max {ordered[-1] * 1000:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--interval-s", type=float, default=0.005)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        alone_state, read_state = Path(tmp) / "alone", Path(tmp) / "read"
        shutil.copytree(FIXTURE, alone_state)
        shutil.copytree(FIXTURE, read_state)
        db = "agents/ops/agent/openclaw-agent.sqlite"
        alone = writer(alone_state / db, args.events, args.interval_s)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clawstats",
                "serve",
                "--state-dir",
                str(read_state),
                "--no-cache",
                "--port",
                "0",
                "--poll-interval-s",
                "0.05",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        url = server.stdout.readline().split(" on ")[1].split()[0]
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        events = [0]

        def listen() -> None:
            try:
                with httpx.stream("GET", url + "/api/events", timeout=60) as response:
                    for line in response.iter_lines():
                        events[0] += line.startswith("event:")
            except httpx.HTTPError:
                return

        threading.Thread(target=listen, daemon=True).start()
        time.sleep(0.5)
        try:
            read = writer(read_state / db, args.events, args.interval_s)
            time.sleep(0.5)
        finally:
            server.terminate()
            server.wait()
    print(f"writer alone          : {summary(alone)}  ({len(alone)} commits, 0 SQLITE_BUSY)")
    print(f"writer + clawstats    : {summary(read)}  ({len(read)} commits, 0 SQLITE_BUSY, {events[0]} SSE events)")


if __name__ == "__main__":
    main()
