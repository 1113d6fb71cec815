"""RSS of ``clawstats serve --no-cache`` after each phase of the sweep's serve phase.

Usage: ``bench/serve_phases.py STORE --layout file|sqlite [--clawstats PATH] [--appends 30]``.
Starts the server on a free port, waits until ``/healthz`` answers 200 and two seconds more,
then, reading ``VmRSS`` and ``VmHWM`` after each: an SSE client connects and gets its snapshot;
``--appends`` lines appended 0.3 s apart (append -> SSE p50/p95, as ``bench/sweep.py``); one
full ``GET /api/sessions`` with gzip (httpx asks for it), nine more (p50 of all ten); one full
``GET`` with ``Accept-Encoding: identity``; 200 ``?limit=50`` (p50); with ``--idle-s``, that long
idle. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sweep import CLAWSTATS, Appender, _sse, start_serve, vm, wait_rows


def _get_ms(client: httpx.Client, url: str, n: int, headers: dict[str, str] | None = None) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        assert client.get(url, headers=headers).status_code == 200
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure(store: Path, layout: str, clawstats: str, appends: int, idle_s: float = 0.0) -> dict[str, float]:
    # The store by its real path: the bench rows name their transcripts by it, and a file-system
    # event under another spelling of the state dir is not matched to its transcript (the safety
    # sweep finds the append ~50 s later at 50,000 sessions).
    proc, url = start_serve(store.resolve(), clawstats)
    out: dict[str, float] = {}

    def phase(name: str) -> None:
        time.sleep(1.0)
        out[f"rss_{name}_mib"] = vm(proc.pid, "VmRSS")
        out[f"hwm_{name}_mib"] = vm(proc.pid, "VmHWM")

    try:
        with httpx.Client(timeout=300) as client:
            out["rows"] = wait_rows(client, url)
            time.sleep(1.0)
            phase("ready")
            got = threading.Event()

            def reader() -> None:
                with httpx.stream("GET", url + "/api/events", timeout=300) as response:
                    for line in response.iter_lines():
                        if line.startswith("data:"):
                            got.set()
                            return

            threading.Thread(target=reader, daemon=True).start()
            got.wait(120)
            phase("sse_snapshot")
            appender = Appender(store, layout)
            try:
                sse = _sse(url, appender, appends, 0.3, proc.pid, 0.0, {})
            finally:
                appender.close()
            out.update({k: sse[k] for k in ("sse_p50_ms", "sse_p95_ms", "delivered")})
            phase("appends")
            first = _get_ms(client, url + "/api/sessions", 1)
            phase("get_all_1")
            rest = _get_ms(client, url + "/api/sessions", 9)
            out["get_all_p50_ms"] = statistics.median(first + rest)
            phase("get_all_10")
            out["get_identity_ms"] = _get_ms(client, url + "/api/sessions", 1, {"Accept-Encoding": "identity"})[0]
            phase("get_identity")
            out["get_50_p50_ms"] = statistics.median(_get_ms(client, url + "/api/sessions?limit=50", 200))
            phase("limit50")
            if idle_s > 0:
                time.sleep(idle_s)
                phase("idle")
    finally:
        proc.terminate()
        proc.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--layout", choices=["file", "sqlite"], default="file")
    parser.add_argument("--clawstats", default=CLAWSTATS)
    parser.add_argument("--appends", type=int, default=30)
    parser.add_argument("--idle-s", type=float, default=0.0, help="then idle this long and read once more")
    args = parser.parse_args()
    result = measure(args.store, args.layout, args.clawstats, args.appends, args.idle_s)
    rounded = {k: round(v, 1) for k, v in result.items()}
    print(json.dumps({"clawstats": args.clawstats, "store": str(args.store), **rounded}))


if __name__ == "__main__":
    main()
