"""Live cost of ``clawstats serve`` on generated stores: append latency and CPU per append.

    python bench/live.py [--sizes small medium] [--appends 100]

For each store: start the server, append one assistant line to a transcript N times (100 ms
apart), and measure the time until the SSE event arrives and until ``/api/sessions`` shows it
(p50/p95), and the server's CPU time per append (its CPU during the appends minus its idle CPU
over the same duration). O(new bytes) means the CPU per append does not grow with the store.
Then ``GET /api/sessions`` latency with all rows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.api_latency import appends, pct, requests, start
from bench.run import corpus

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=["small", "medium"])
    parser.add_argument("--appends", type=int, default=100)
    args = parser.parse_args()
    for size in args.sizes:
        store = corpus(size)
        index = json.loads((store / "agents/main/sessions/sessions.json").read_text())
        transcript = store / "agents/main/sessions" / f"{index['agent:main:bench-0']['sessionId']}.jsonl"
        proc, url = start(store)
        try:
            time.sleep(2.0)
            idle_start, idle_t0 = cpu_s(proc.pid), time.perf_counter()
            time.sleep(5.0)
            idle_rate = (cpu_s(proc.pid) - idle_start) / (time.perf_counter() - idle_t0)
            busy_start, busy_t0 = cpu_s(proc.pid), time.perf_counter()
            sse, poll = appends(url, transcript, args.appends)
            busy = cpu_s(proc.pid) - busy_start - idle_rate * (time.perf_counter() - busy_t0)
            latencies, rps = requests(url, 500)
            rows = len(httpx.get(url + "/api/sessions").json()["sessions"])
        finally:
            proc.terminate()
            proc.wait()
        facts = json.loads((store / ".generated.json").read_text())
        print(f"{size}: {facts['bytes'] / 1e6:.0f} MB, {rows} rows")
        print(
            f"  append -> SSE event: p50 {statistics.median(sse) * 1000:.0f} ms, p95 {pct(sse, 0.95) * 1000:.0f} ms"
            f" ({len(sse)}/{args.appends})"
        )
        visible = f"p50 {statistics.median(poll) * 1000:.0f} ms, p95 {pct(poll, 0.95) * 1000:.0f} ms"
        print(f"  append -> /api/sessions: {visible}")
        print(f"  server CPU per append: {busy / args.appends * 1000:.1f} ms (idle {idle_rate * 1000:.1f} ms CPU/s)")
        print(
            f"  GET /api/sessions: p50 {pct(latencies, 0.5) * 1000:.2f} ms, p99 {pct(latencies, 0.99) * 1000:.2f} ms,"
            f" {rps:.0f} req/s"
        )


if __name__ == "__main__":
    main()
