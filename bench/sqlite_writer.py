"""A writer that appends transcript events to an OpenClaw SQLite store the way the gateway
does (WAL, one short transaction per event, ``session_nodes`` row updated at the end), and
reports its own commit latency. ``busy_timeout`` is 0, so any lock contention caused by a
reader raises ``SQLITE_BUSY`` at once and the exit status is 3.

    python bench/sqlite_writer.py DB --key agent:ops:quick --events 50 --interval-s 0.02 [--json]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time


def _octet_length(value: object) -> int | None:
    # Built into SQLite >= 3.43 (the schema's CHECKs use it); Python 3.11 bundles 3.40.
    if value is None:
        return None
    return len(value.encode()) if isinstance(value, str) else len(value)  # type: ignore[arg-type]


def run(database: str, key: str, events: int, interval_s: float, cost: float, prompt: int) -> list[float]:
    db = sqlite3.connect(database, timeout=0, isolation_level=None)
    db.create_function("octet_length", 1, _octet_length, deterministic=True)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=0")
    sid, top = db.execute(
        "SELECT n.current_session_id, max(e.seq) FROM session_nodes n "
        "LEFT JOIN transcript_events e ON e.session_id = n.current_session_id WHERE n.session_key = ?",
        (key,),
    ).fetchone()
    latencies = []
    now_ms = int(time.time() * 1000)
    for i in range(events):
        event = {
            "type": "message",
            "id": f"writer-{now_ms}-{i}",
            "parentId": None,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "message": {
                "role": "assistant",
                "content": [{"type": "text", "text": "ok"}],
                "provider": "mock",
                "model": "mock-small",
                "usage": {"input": prompt, "output": 3, "cacheRead": 0, "cacheWrite": 0, "cost": {"total": cost}},
                "stopReason": "stop",
                "timestamp": now_ms + i,
            },
        }
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES (?, ?, ?, ?)",
            (sid, (top if top is not None else -1) + 1 + i, json.dumps(event), now_ms + i),
        )
        db.execute("COMMIT")
        latencies.append(time.perf_counter() - started)
        time.sleep(interval_s)
    entry = json.loads(db.execute("SELECT entry_json FROM session_nodes WHERE session_key = ?", (key,)).fetchone()[0])
    entry.update(updatedAt=now_ms + events, totalTokens=prompt, totalTokensFresh=True)
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "UPDATE session_nodes SET entry_json = ?, updated_at = ? WHERE session_key = ?",
        (json.dumps(entry), now_ms + events, key),
    )
    db.execute("COMMIT")
    db.close()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("database")
    parser.add_argument("--key", default="agent:ops:quick")
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--interval-s", type=float, default=0.02)
    parser.add_argument("--cost", type=float, default=0.01)
    parser.add_argument("--prompt", type=int, default=20000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        latencies = run(args.database, args.key, args.events, args.interval_s, args.cost, args.prompt)
    except sqlite3.OperationalError as exc:
        sys.stderr.write(f"writer: {exc}\n")
        return 3
    if args.json:
        print(json.dumps(latencies))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
