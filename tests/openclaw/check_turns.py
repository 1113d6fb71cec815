"""turnsToCompaction against a fresh real OpenClaw gateway run, for either store layout.

Run as root (the harness then uses a private network namespace):

    .venv/bin/python -m tests.openclaw.check_turns --version 2026.9.6 [--sessions 3] [--turns 45] [--seed 1920]

Drives the attribution fixture's growing sessions (:func:`tests.openclaw.make_attrib_fixture.grow`)
through the real gateway with the harness's config (2026.7.x: ``reserveTokens: 4000``; 2026.9.x:
no reserve keys, so the 2026.8+ rule ``min(20000, window/4)``), then replays every session's
transcript (JSONL file, or ``transcript_events`` of the agent's SQLite database) and scores each
prediction (:mod:`tests.openclaw.compaction_check`). Prints the summary as JSON; nothing is kept.
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
from tests.openclaw.harness import SMALL_WINDOW, VERSIONS, OpenClawRun, install
from tests.openclaw.make_attrib_fixture import AGENTS, grow


def sqlite_events(db: Path, session_id: str) -> Iterator[bytes]:
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


def transcripts(state: Path, layout: str) -> Iterator[Iterator[bytes]]:
    """Each ``agent:ops:grow-*`` session's transcript lines."""
    if layout == "sqlite":
        db = state / "agents/ops/agent/openclaw-agent.sqlite"
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            sessions = conn.execute("SELECT session_key, current_session_id FROM session_nodes").fetchall()
        finally:
            conn.close()
        for key, session_id in sorted(sessions):
            if key.startswith("agent:ops:grow-"):
                yield sqlite_events(db, session_id)
        return
    index = json.loads((state / "agents/ops/sessions/sessions.json").read_text())
    for key, row in sorted(index.items()):
        if key.startswith("agent:ops:grow-"):
            yield iter((state / "agents/ops/sessions" / f"{row['sessionId']}.jsonl").read_bytes().splitlines())


def score_run(oc: OpenClawRun) -> list[Scored]:
    config = compaction_config(json.loads(oc.config_path.read_text()))
    scored: list[Scored] = []
    for lines in transcripts(oc.state_dir, VERSIONS[oc.inst.version]):
        scored += score(lines, SMALL_WINDOW, config)
    return scored


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", default="2026.9.6", choices=sorted(VERSIONS))
    ap.add_argument("--seed", default="1920")
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--turns", type=int, default=45)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="octurns-"))
    try:
        with OpenClawRun(work, install(a.version), agents=AGENTS, seed=a.seed) as oc:
            oc.start()
            grow(oc, a.sessions, a.turns)
            oc.stop()
            result = summary(score_run(oc))
        print(json.dumps({"openclaw": a.version, "seed": a.seed, **result}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
