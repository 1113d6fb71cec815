"""Sweep the session count: many short sessions, clawstats side by side with ccusage, one run.

    python bench/sweep.py [--sessions 1000 5000 20000 50000] [--layouts file sqlite] [--runs 1]

For each count, a store of that many short sessions (``bench/gen_corpus.py``, 3 turns on
average, 3 agents; the SQLite layout is the same sessions written into OpenClaw 2026.9's schema
by ``bench/gen_sqlite.py``) is generated under ``bench/.work/`` (kept between runs), then:

- cold CLI: ``clawstats sessions --json --no-cache`` and ``ccusage openclaw session --json
  --offline`` (ccusage 20.0.24 reads only the file layout: for SQLite its figure is the same
  sessions as files), min of ``--runs`` after one warm-up; warm CLI with the persisted index and
  the last answer (nothing changed), then once more after one line appended to one session (a
  full read with the persisted index);
- serve (``--no-cache``): start-up until ``/healthz`` reports every row, idle CPU over 5 s,
  then ``--appends`` assistant lines appended to one transcript (or one SQLite session) every
  ``--interval-s``: append -> its own SSE event p50/p95 and how many arrived, server CPU per
  append (minus idle); ``GET /api/sessions`` p50 for all rows and for ``limit=50``; RSS.

Prints one table (markdown) at the end. Nothing here is asserted: it is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.api_latency import pct  # noqa: E402
from bench.gen_corpus import generate  # noqa: E402
from bench.gen_sqlite import to_sqlite  # noqa: E402
from bench.live import cpu_s  # noqa: E402
from bench.run import WORK, ccusage, run  # noqa: E402

CLAWSTATS = str(ROOT / ".venv" / "bin" / "clawstats")


def corpus(sessions: int, layout: str) -> Path:
    path = WORK / f"sweep-{sessions}"
    if not (path / ".generated.json").exists():
        print(f"generating {sessions} sessions...", flush=True)
        facts = generate(path, sessions, 3)
        (path / ".generated.json").write_text(json.dumps(facts))
    if layout == "file":
        return path
    sq = WORK / f"sweep-{sessions}-sqlite"
    if not (sq / ".generated.json").exists():
        print(f"writing {sessions} sessions into SQLite...", flush=True)
        to_sqlite(path, sq)
        (sq / ".generated.json").write_text((path / ".generated.json").read_text())
    return sq


def best(cmd: list[str], runs: int) -> tuple[float, float, str]:
    """(min wall s, max peak RSS MiB, stdout) after one warm-up run."""
    run(cmd)
    results = [run(cmd) for _ in range(runs)]
    return min(r[0] for r in results), max(r[1] for r in results) / 1024, results[-1][2]


def vm(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _line(marker: int) -> dict[str, object]:
    return {
        "type": "message",
        "id": f"sweep{marker}",
        "parentId": None,
        "timestamp": "2026-11-24T18:00:00.000Z",
        "message": {
            "role": "assistant",
            "content": [{"type": "text", "text": "x"}],
            "provider": "mock",
            "model": "mock-large",
            "usage": {"input": marker, "output": 1, "cacheRead": 0, "cacheWrite": 0, "cost": {"total": 0.001}},
            "stopReason": "stop",
            "timestamp": 1795543200000 + marker % 1000,
        },
    }


class Appender:
    """Appends one assistant line to one session of either layout."""

    def __init__(self, store: Path, layout: str) -> None:
        self.layout = layout
        if layout == "file":
            index = json.loads((store / "agents/main/sessions/sessions.json").read_text())
            self.path = store / "agents/main/sessions" / f"{index['agent:main:bench-0']['sessionId']}.jsonl"
        else:
            self.db = sqlite3.connect(store / "agents/main/agent/openclaw-agent.sqlite", timeout=5)
            # The schema's CHECKs call octet_length(), built into SQLite >= 3.43; Python 3.11 bundles 3.40.
            self.db.create_function("octet_length", 1, lambda v: None if v is None else len(str(v).encode()))
            self.db.execute("PRAGMA journal_mode=WAL")
            (self.sid,) = self.db.execute(
                "SELECT current_session_id FROM session_nodes WHERE session_key = 'agent:main:bench-0'"
            ).fetchone()

    def close(self) -> None:
        if self.layout == "sqlite":
            self.db.close()

    def append(self, marker: int) -> None:
        data = json.dumps(_line(marker))
        if self.layout == "file":
            with open(self.path, "a") as fh:
                fh.write(data + "\n")
            return
        with self.db:
            (top,) = self.db.execute(
                "SELECT max(seq) FROM transcript_events WHERE session_id = ?", (self.sid,)
            ).fetchone()
            self.db.execute(
                "INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES (?, ?, ?, ?)",
                (self.sid, top + 1, data, 1795543200000),
            )


def start_serve(
    store: Path, clawstats: str = CLAWSTATS, cache_dir: Path | None = None
) -> tuple[subprocess.Popen[str], str]:
    """``clawstats serve --no-cache`` (with ``cache_dir``: its persisted index there) on a free
    port: (the process, its URL)."""
    cache = ["--cache-dir", str(cache_dir)] if cache_dir is not None else ["--no-cache"]
    proc = subprocess.Popen(
        [clawstats, "serve", "--state-dir", str(store), *cache, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split(" on ")[1].split()[0]


def wait_rows(client: httpx.Client, url: str, rows: int = 0) -> int:
    """Poll ``/healthz`` until it is 200 with at least ``rows`` sessions; the sessions served."""
    while True:
        try:
            health = client.get(url + "/healthz")
            if health.status_code == 200 and health.json()["sessions"] >= rows:
                return int(health.json()["sessions"])
        except httpx.HTTPError:
            pass
        time.sleep(0.02)


def serve(store: Path, layout: str, rows: int, appends: int, interval_s: float) -> dict[str, float]:
    started = time.perf_counter()
    proc, url = start_serve(store)
    out: dict[str, float] = {}
    try:
        with httpx.Client(timeout=120) as client:
            wait_rows(client, url, rows)
            out["serve_s"] = time.perf_counter() - started
            time.sleep(2.0)
            idle_cpu, idle_t = cpu_s(proc.pid), time.perf_counter()
            time.sleep(5.0)
            idle_rate = (cpu_s(proc.pid) - idle_cpu) / (time.perf_counter() - idle_t)
            out["idle_pct"] = idle_rate * 100
            arrivals = _sse(url, Appender(store, layout), appends, interval_s, proc.pid, idle_rate, out)
            out.update(arrivals)
            for name, query in (("get_all_ms", ""), ("get_50_ms", "?limit=50")):
                times = []
                for _ in range(10 if not query else 200):
                    t0 = time.perf_counter()
                    assert client.get(url + "/api/sessions" + query).status_code == 200
                    times.append(time.perf_counter() - t0)
                out[name] = statistics.median(times) * 1000
        out["rss_mib"] = vm(proc.pid, "VmRSS")
        out["peak_mib"] = vm(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait()
    return out


def _sse(
    url: str, appender: Appender, n: int, interval_s: float, pid: int, idle_rate: float, out: dict[str, float]
) -> dict[str, float]:
    arrivals: dict[int, float] = {}
    stop = threading.Event()

    def reader() -> None:
        try:
            with httpx.stream("GET", url + "/api/events", timeout=120) as response:
                for line in response.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("data:") and '"contextTokens":9' in line:
                        for row in json.loads(line[5:]).get("sessions", []):
                            marker = row.get("contextTokens") or 0
                            if 900000 <= marker < 1000000:
                                arrivals.setdefault(marker, time.perf_counter())
        except httpx.HTTPError:
            return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(2.0)  # the first event (a snapshot of every row) is long at 50,000
    written: dict[int, float] = {}
    busy_cpu, busy_t = cpu_s(pid), time.perf_counter()
    for i in range(n):
        marker = 900000 + i
        written[marker] = time.perf_counter()
        appender.append(marker)
        time.sleep(interval_s)
    time.sleep(1.0)
    busy = cpu_s(pid) - busy_cpu - idle_rate * (time.perf_counter() - busy_t)
    stop.set()
    lat = [arrivals[m] - t for m, t in written.items() if m in arrivals]
    return {
        "cpu_per_append_ms": busy / n * 1000,
        "sse_p50_ms": statistics.median(lat) * 1000 if lat else float("nan"),
        "sse_p95_ms": pct(lat, 0.95) * 1000 if lat else float("nan"),
        "delivered": len(lat),
        "appends": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, nargs="+", default=[1000, 5000, 20000, 50000])
    parser.add_argument("--layouts", nargs="+", default=["file"], choices=["file", "sqlite"])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--appends", type=int, default=30)
    parser.add_argument("--interval-s", type=float, default=0.3)
    parser.add_argument("--no-serve", action="store_true", help="CLI figures only")
    args = parser.parse_args()
    binary = ccusage()
    print(f"machine: {os.cpu_count()} cores; runs per CLI figure: {args.runs} (min, after one warm-up)", flush=True)
    table = []
    for layout in args.layouts:
        for sessions in args.sessions:
            store = corpus(sessions, layout)
            files_store = corpus(sessions, "file")
            cli = [CLAWSTATS, "sessions", "--state-dir", str(store), "--json"]
            cold, cold_rss, text = best([*cli, "--no-cache"], args.runs)
            rows = len(json.loads(text)["sessions"])
            theirs = float("nan")
            if binary is not None:
                cmd = [str(binary), "openclaw", "session", "--json", "--offline", "--open-claw-path", str(files_store)]
                theirs = best(cmd, args.runs)[0]
            with tempfile.TemporaryDirectory() as cache_dir:
                cached = [*cli, "--cache-dir", cache_dir]
                first = run(cached)[0]
                warm = best(cached, args.runs)[0]
                appender = Appender(store, layout)  # one session changed: a full read with the index
                appender.append(int(time.time()))
                appender.close()
                after_append = run(cached)[0]
            result: dict[str, float] = {"rows": rows, "cold_s": cold, "cold_rss": cold_rss, "ccusage_s": theirs}
            result.update(first_cached_s=first, warm_s=warm, after_append_s=after_append)
            if not args.no_serve:
                result.update(serve(store, layout, rows, args.appends, args.interval_s))
            print(layout, sessions, json.dumps(result), flush=True)
            table.append((layout, sessions, result))
    print()
    print(
        "| layout | sessions | cold CLI / ccusage | warm CLI: unchanged / 1 append (first cached) | serve: all rows "
        "| idle CPU | CPU/append | append -> SSE p50 / p95 (delivered) | GET all / limit=50 p50 | RSS (peak) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for layout, sessions, r in table:
        serve_cols = "| | | | | |"
        if "serve_s" in r:
            serve_cols = (
                f"| {r['serve_s']:.2f} s | {r['idle_pct']:.1f} % | {r['cpu_per_append_ms']:.1f} ms "
                f"| {r['sse_p50_ms']:.0f} / {r['sse_p95_ms']:.0f} ms ({r['delivered']:.0f}/{r['appends']:.0f}) "
                f"| {r['get_all_ms']:.1f} / {r['get_50_ms']:.2f} ms | {r['rss_mib']:.0f} ({r['peak_mib']:.0f}) MiB |"
            )
        ratio = r["cold_s"] / r["ccusage_s"]
        print(
            f"| {layout} | {sessions:,} | {r['cold_s']:.2f} / {r['ccusage_s']:.2f} s ({ratio:.2f}x) "
            f"| {r['warm_s']:.2f} / {r['after_append_s']:.2f} s ({r['first_cached_s']:.2f} s) {serve_cols}"
        )


if __name__ == "__main__":
    main()
