"""The same sessions in OpenClaw 2026.9's SQLite layout, for benchmarks.

    python bench/gen_sqlite.py FILE_STORE OUT
    python bench/gen_sqlite.py --reindex OUT   # an older store's rows: no sessionFile, as below

Copies the schema of the real 2026.9.6 fixture (``tests/data/openclaw-real-sqlite``) into a new
``agents/<id>/agent/openclaw-agent.sqlite`` per agent and writes every live transcript of a
file-layout store (``bench/gen_corpus.py``) into it: one ``session_nodes`` row per
``sessions.json`` row, one ``transcript_events`` row per line. Reset archives are left out.
A row's ``entry_json`` has no ``sessionFile`` (the real store's rows have none; until session 7
they carried the file store's).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "tests/data/openclaw-real-sqlite/state/agents/ops/agent"


def _schema() -> list[str]:
    uri = f"file:{FIXTURE / 'openclaw-agent.sqlite'}?mode=ro&immutable=1"
    with sqlite3.connect(uri, uri=True) as db:
        return [sql for (sql,) in db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")]


def to_sqlite(files: Path, out: Path) -> None:
    schema = _schema()
    for sessions_json in sorted(files.glob("agents/*/sessions/sessions.json")):
        agent_dir = out / "agents" / sessions_json.parent.parent.name / "agent"
        agent_dir.mkdir(parents=True, exist_ok=True)
        (out / "agents" / sessions_json.parent.parent.name / "sessions").mkdir(exist_ok=True)
        db = sqlite3.connect(agent_dir / "openclaw-agent.sqlite")
        # The schema's CHECKs call octet_length(), built into SQLite >= 3.43; Python 3.11 bundles 3.40.
        db.create_function("octet_length", 1, lambda v: None if v is None else len(str(v).encode()))
        db.execute("PRAGMA journal_mode=WAL")
        for sql in schema:
            try:
                db.execute(sql)
            except sqlite3.OperationalError as exc:  # FTS shadow tables and sqlite_sequence come with theirs
                if "already exists" not in str(exc) and "reserved for internal use" not in str(exc):
                    raise
        rows = json.loads(sessions_json.read_text())
        with db:
            for key, row in rows.items():
                sid = row["sessionId"]
                db.execute(
                    "INSERT INTO session_nodes (session_key, current_session_id, entry_json, updated_at)"
                    " VALUES (?, ?, ?, ?)",
                    # no sessionFile: a SQLite store's rows carry none (the real fixture's)
                    (key, sid, json.dumps({k: v for k, v in row.items() if k != "sessionFile"}), row["updatedAt"]),
                )
                lines = (sessions_json.parent / f"{sid}.jsonl").read_text().splitlines()
                db.executemany(
                    "INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES (?, ?, ?, ?)",
                    [(sid, seq, line, row["updatedAt"]) for seq, line in enumerate(lines)],
                )
        db.close()


def reindex(out: Path) -> int:
    """Drop ``sessionFile`` from the rows of a store :func:`to_sqlite` wrote before it left it
    out (the events untouched); returns the rows rewritten."""
    count = 0
    for path in sorted(out.glob("agents/*/agent/openclaw-agent.sqlite")):
        with sqlite3.connect(path) as db:
            count += db.execute(
                "UPDATE session_nodes SET entry_json = json_remove(entry_json, '$.sessionFile')"
                " WHERE json_extract(entry_json, '$.sessionFile') IS NOT NULL"
            ).rowcount
        db.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", type=Path, nargs="?")
    parser.add_argument("out", type=Path)
    parser.add_argument("--reindex", action="store_true", help="only drop the sessionFile of OUT's rows")
    args = parser.parse_args()
    if args.reindex:
        print(json.dumps({"rows": reindex(args.out)}))
        return
    if args.files is None:
        parser.error("FILE_STORE is required")
    to_sqlite(args.files, args.out)


if __name__ == "__main__":
    main()
