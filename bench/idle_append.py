"""CPU of the first append to an idle session: ``StatsStore.scan`` of it plus the hub's publish.

    python bench/idle_append.py --sessions 50000 --layout file|sqlite [--appends 60]

``bench/append_cost.py`` appends to one session again and again: after the first, its statistics
stay unpacked. Here each append goes to another session, idle since the cold read (packed): the
append pays the unpack (or, when its image was packed without its context segment, the re-read of
its transcript or events). Works on a private copy of the sweep's store (``cp -al``, the appended
files or the database copied, so the shared store is not changed), removed at the end. Prints the
CPU per append and the unpacks and re-reads the appends made.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clawstats.api.alerts import AlertManager
from clawstats.api.events import Hub
from clawstats.core.alerts import AlertRules
from clawstats.settings import Settings
from clawstats.watch.engine import open_store
from clawstats.watch.tail import Tail

# after clawstats is imported: it is the running venv's (main's or a branch's), ``bench`` this one's
sys.path.append(str(Path(__file__).resolve().parent.parent))
from bench.sweep import _line, corpus

_DB = "agents/main/agent/openclaw-agent.sqlite"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50000)
    parser.add_argument("--layout", choices=["file", "sqlite"], default="file")
    parser.add_argument("--appends", type=int, default=60)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    shared = corpus(args.sessions, args.layout)  # the sweep's store (generated when missing)
    scratch = Path(tempfile.mkdtemp(prefix="idle-append-"))
    try:
        state = scratch / "state"
        subprocess.run(["cp", "-al", str(shared), str(state)], check=True)
        index = json.loads((state / "agents/main/sessions/sessions.json").read_text()) if args.layout == "file" else {}
        if args.layout == "sqlite":
            for suffix in ("", "-wal"):  # a copy of its own: the appends go there
                src = shared / (_DB + suffix)
                if src.exists():
                    (state / (_DB + suffix)).unlink()
                    shutil.copyfile(src, state / (_DB + suffix))
            db = sqlite3.connect(state / _DB, timeout=5)
            db.create_function("octet_length", 1, lambda v: None if v is None else len(str(v).encode()))
            keys = [
                k for (k,) in db.execute("SELECT session_key FROM session_nodes WHERE session_key LIKE 'agent:main:%'")
            ]
        else:
            keys = list(index)
        picked = random.Random(17).sample([k for k in keys if k != "agent:main:bench-0"], args.appends + 3)
        paths = {key: state / "agents/main/sessions" / f"{index[key]['sessionId']}.jsonl" for key in index}
        for key in picked if args.layout == "file" else ():
            data = paths[key].read_bytes()
            paths[key].unlink()  # the hard link broken before the first read: the shared file is not appended to
            paths[key].write_bytes(data)
        store = open_store(Settings(state_dir=str(state), no_cache=True), {})
        hub = Hub()
        hub.listeners.append(AlertManager(hub, AlertRules()).on_snapshot)
        hub.publish(store.scan())
        spent_s, unpacks, rereads = 0.0, 0, 0
        for n, key in enumerate(picked):
            hint: set[str] = set()
            if args.layout == "file":
                with open(paths[key], "ab") as fh:
                    fh.write(json.dumps(_line(990200 + n)).encode() + b"\n")
                hint = {str(paths[key])}
            else:
                (sid,) = db.execute(
                    "SELECT current_session_id FROM session_nodes WHERE session_key = ?", (key,)
                ).fetchone()
                with db:
                    (top,) = db.execute(
                        "SELECT max(seq) FROM transcript_events WHERE session_id = ?", (sid,)
                    ).fetchone()
                    db.execute(
                        "INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES (?, ?, ?, ?)",
                        (sid, top + 1, json.dumps(_line(990200 + n)), 1795543200000),
                    )
            before = (Tail.unpacks, getattr(Tail, "rereads", 0))
            started = time.process_time()
            hub.publish(store.scan(hint))
            if n >= 3:  # the first three: warm-up
                spent_s += time.process_time() - started
                unpacks += Tail.unpacks - before[0]
                rereads += getattr(Tail, "rereads", 0) - before[1]
        per_append_ms = spent_s / args.appends * 1000
        print(
            f"{args.sessions} sessions, {args.layout}, idle sessions: {per_append_ms:.2f} ms CPU per append"
            f" (scan + publish); {unpacks} unpacks, {rereads} re-reads in {args.appends} appends"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
