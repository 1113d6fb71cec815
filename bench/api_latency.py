"""HTTP latency of ``clawstats serve`` on a generated store, against the cost of encoding.

    python bench/api_latency.py [--sessions 1000] [--requests 2000] [--appends 50]

Prints p50/p99 of ``GET /api/sessions`` (sequential, keep-alive) and requests/s with 8 client
threads, next to the in-process time to just encode the same payload; then appends assistant
lines to a transcript and reports append-to-SSE-event and append-to-poll-visible p50/p95.
Everything runs on loopback, bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.gen_corpus import generate
from clawstats.core.session import iso_ms
from clawstats.settings import Settings
from clawstats.watch.engine import open_store


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start(state: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "clawstats", "serve", "--state-dir", str(state), "--no-cache", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().split(" on ")[1].split()[0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def encode_cost(state: Path, repeat: int = 50) -> float:
    snapshot = open_store(Settings(state_dir=str(state), no_cache=True), {}).scan()
    encoder = msgspec.json.Encoder()
    started = time.perf_counter()
    for _ in range(repeat):
        body = {"sessions": snapshot.rows, "totals": snapshot.totals, "generatedAt": iso_ms(snapshot.generated_ms)}
        encoder.encode(body)
    return (time.perf_counter() - started) / repeat


def requests(url: str, n: int) -> tuple[list[float], float]:
    latencies = []
    with httpx.Client() as client:
        for _ in range(50):
            client.get(url + "/api/sessions")
        for _ in range(n):
            started = time.perf_counter()
            response = client.get(url + "/api/sessions")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200
    threads, seconds = 8, 5.0
    done = [0] * threads

    def worker(slot: int) -> None:
        with httpx.Client() as client:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                client.get(url + "/api/sessions")
                done[slot] += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return latencies, sum(done) / seconds


def appends(url: str, transcript: Path, n: int) -> tuple[list[float], list[float]]:
    arrivals: dict[int, float] = {}
    stop = threading.Event()

    def reader() -> None:
        try:
            with httpx.stream("GET", url + "/api/events", timeout=60) as response:
                for line in response.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("data:") and '"contextTokens":9' in line:
                        for row in json.loads(line[5:]).get("sessions", []):  # alert events too
                            marker = row.get("contextTokens") or 0
                            if 900000 <= marker < 1000000:
                                arrivals.setdefault(marker, time.perf_counter())
        except httpx.HTTPError:
            return  # the server is gone: the benchmark is over

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(1.0)
    sse, poll = [], []
    with httpx.Client() as client:
        for i in range(n):
            marker = 900000 + i
            line = {
                "type": "message",
                "id": f"bench{i:04d}",
                "parentId": None,
                "timestamp": "2026-11-24T18:00:00.000Z",
                "message": {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "x"}],
                    "provider": "mock",
                    "model": "mock-large",
                    "usage": {"input": marker, "output": 1, "cacheRead": 0, "cacheWrite": 0, "cost": {"total": 0.001}},
                    "stopReason": "stop",
                    "timestamp": 1795543200000 + i,
                },
            }
            written = time.perf_counter()
            with open(transcript, "ab") as fh:
                fh.write(json.dumps(line).encode() + b"\n")
            deadline = written + 5
            while time.perf_counter() < deadline:
                body = client.get(url + "/api/sessions?q=bench-0&limit=1").json()
                if body["sessions"] and body["sessions"][0]["contextTokens"] == marker:
                    poll.append(time.perf_counter() - written)
                    break
                time.sleep(0.002)
            while marker not in arrivals and time.perf_counter() < deadline:
                time.sleep(0.002)
            if marker in arrivals:
                sse.append(arrivals[marker] - written)
            time.sleep(0.1)
    stop.set()
    return sse, poll


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--appends", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        facts = generate(state, args.sessions, args.turns)
        index = json.loads((state / "agents/main/sessions/sessions.json").read_text())
        transcript = state / "agents/main/sessions" / f"{index['agent:main:bench-0']['sessionId']}.jsonl"
        encode_s = encode_cost(state)
        proc, url = start(state)
        try:
            latencies, rps = requests(url, args.requests)
            sse, poll = appends(url, transcript, args.appends)
        finally:
            proc.terminate()
            proc.wait()
    p50, p99 = pct(latencies, 0.5), pct(latencies, 0.99)
    print(f"store: {facts['files']} transcripts, {facts['bytes'] / 1e6:.0f} MB, {args.sessions} sessions")
    print(f"GET /api/sessions: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, {rps:.0f} req/s (8 threads)")
    print(f"encode only (msgspec, in-process): {encode_s * 1000:.2f} ms  -> p50 / encode = {p50 / encode_s:.2f}x")
    print(
        f"append -> SSE event: p50 {statistics.median(sse) * 1000:.0f} ms, p95 {pct(sse, 0.95) * 1000:.0f} ms "
        f"({len(sse)}/{args.appends} received)"
    )
    visible = f"p50 {statistics.median(poll) * 1000:.0f} ms, p95 {pct(poll, 0.95) * 1000:.0f} ms"
    print(f"append -> visible in /api/sessions: {visible}")


if __name__ == "__main__":
    main()
