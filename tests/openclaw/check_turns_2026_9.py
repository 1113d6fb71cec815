"""turnsToCompaction against the real OpenClaw 2026.9.6 gateway (SQLite store, 2026.8+ reserve rule).

Run as root (private network namespace, as ``make_attrib_fixture.py``):

    .venv/bin/python -m tests.openclaw.check_turns_2026_9 [--sessions 3] [--turns 45] [--seed 1920]

Drives the same growing sessions as the attribution fixture through a real 2026.9.6 gateway whose
config has no ``reserveTokens`` keys (so the reserve is ``min(20000, window/4)``), then replays
every session's transcript events from the agent's SQLite database and scores each prediction
(:mod:`tests.openclaw.compaction_check`). Prints the summary as JSON; nothing is kept.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import zstandard

from clawstats.core.forecast import compaction_config
from tests.openclaw.compaction_check import Scored, score, summary
from tests.openclaw.make_attrib_fixture import Run, grow

WINDOW = 32000


def events(db: Path, session_id: str) -> Iterator[bytes]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        query = "SELECT event_json, event_zstd FROM transcript_events WHERE session_id = ? ORDER BY seq"
        for plain, packed in conn.execute(query, (session_id,)):
            if plain is not None:
                yield plain.encode() if isinstance(plain, str) else bytes(plain)
            elif packed is not None:
                yield zstandard.ZstdDecompressor().decompress(packed)
    finally:
        conn.close()


def score_store(state: Path) -> list[Scored]:
    config = compaction_config(json.loads((state / "openclaw.json").read_text()))
    db = state / "agents/ops/agent/openclaw-agent.sqlite"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        sessions = conn.execute("SELECT session_key, current_session_id FROM session_nodes").fetchall()
    finally:
        conn.close()
    scored: list[Scored] = []
    for key, session_id in sorted(sessions):
        if key.startswith("agent:ops:grow-"):
            scored += score(events(db, session_id), WINDOW, config)
    return scored


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", default="1920")
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--turns", type=int, default=45)
    ap.add_argument("--keep-work", action="store_true")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="octurns-"))
    run = Run(work, a.seed, release="2026.9.6")
    try:
        run.start()
        grow(run, a.sessions, a.turns)
    finally:
        run.stop()
    result = summary(score_store(run.state))
    print(json.dumps({"openclaw": run.release, "seed": a.seed, **result}))
    if not a.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
