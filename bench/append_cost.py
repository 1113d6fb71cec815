"""CPU of one append in-process: ``StatsStore.scan`` of the appended path plus the hub's publish.

    python bench/append_cost.py --sessions 50000 --layout file|sqlite [--appends 20] [--node | --index | --other]

Uses the stores of ``bench/sweep.py`` (run it first). CPU time, not wall time: less sensitive
to a shared machine than the server's figures. Only the scan and the publish are timed, not
the write itself (an SQLite commit costs the writer ~2 ms of CPU at 50k). ``--node`` (SQLite):
each append also bumps the session's node, as OpenClaw does after every turn (``updated_at``
and ``entry_json``). ``--index`` (file layout): each append also rewrites the agent's whole
``sessions.json`` with the session's row updated, as OpenClaw does after every turn (the file is
put back as generated at the end). ``--other`` (SQLite): each change is a commit to another table instead (the
gateway's runtime trace and caches write far more often than its transcript): no event, no node.
The appended lines stay in the store.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sweep import WORK, Appender
from clawstats.api.alerts import AlertManager
from clawstats.api.events import Hub
from clawstats.core.alerts import AlertRules
from clawstats.settings import Settings
from clawstats.watch.engine import open_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50000)
    parser.add_argument("--layout", choices=["file", "sqlite"], default="file")
    parser.add_argument("--appends", type=int, default=20)
    parser.add_argument("--node", action="store_true", help="SQLite: bump the session's node too")
    parser.add_argument("--index", action="store_true", help="file: rewrite sessions.json too")
    parser.add_argument("--other", action="store_true", help="SQLite: write to another table instead")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    state = WORK / (f"sweep-{args.sessions}" + ("-sqlite" if args.layout == "sqlite" else ""))
    store = open_store(Settings(state_dir=str(state), no_cache=True), {})
    hub = Hub()
    hub.listeners.append(AlertManager(hub, AlertRules()).on_snapshot)
    hub.publish(store.scan())
    appender = Appender(state, args.layout)
    node = _node(appender) if args.node else None
    hint = {str(appender.path)} if args.layout == "file" else set()
    index = _Index(state) if args.index else None
    if index is not None:
        hint.add(str(index.path))
    change = (lambda marker: _other(appender, marker)) if args.other else (lambda m: _append(appender, m, node, index))
    spent_s = 0.0
    try:
        for i in range(3):  # warm-up
            change(990000 + i)
            hub.publish(store.scan(hint))
        for i in range(args.appends):
            change(990100 + i)
            started = time.process_time()
            hub.publish(store.scan(hint))
            spent_s += time.process_time() - started
    finally:
        if node is not None:  # the sweep's SSE check needs the node as generated
            _bump(appender, node[0], node[1])
        if index is not None:
            index.restore()
        if args.other:
            with appender.db:
                appender.db.execute("DELETE FROM cache_entries WHERE scope = 'bench'")
    per_append_ms = spent_s / args.appends * 1000
    what = f"{args.layout}{' + node' if args.node else ''}{' + sessions.json' if args.index else ''}"
    what += " other table" if args.other else ""
    unit = "commit" if args.other else "append"
    print(f"{args.sessions} sessions, {what}: {per_append_ms:.2f} ms CPU per {unit} (scan + publish)")


_KEY = "agent:main:bench-0"


def _node(appender: Appender) -> tuple[dict[str, object], int]:
    """The appended session's ``entry_json`` and ``updated_at``, as generated."""
    entry, updated_ms = appender.db.execute(
        "SELECT entry_json, updated_at FROM session_nodes WHERE session_key = ?", (_KEY,)
    ).fetchone()
    return json.loads(entry), updated_ms


def _bump(appender: Appender, entry: dict[str, object], updated_ms: int) -> None:
    with appender.db:
        appender.db.execute(
            "UPDATE session_nodes SET entry_json = ?, updated_at = ? WHERE session_key = ?",
            (json.dumps({**entry, "updatedAt": updated_ms}), updated_ms, _KEY),
        )


def _other(appender: Appender, marker: int) -> None:
    with appender.db:
        appender.db.execute(
            "INSERT OR REPLACE INTO cache_entries (scope, key, value_json, updated_at) VALUES ('bench', 'k', ?, ?)",
            (str(marker), marker),
        )


class _Index:
    """The main agent's ``sessions.json``, rewritten whole with one row changed (tmp + rename, as
    OpenClaw writes it), and put back as generated."""

    def __init__(self, state: Path) -> None:
        self.path = state / "agents/main/sessions/sessions.json"
        self.original = self.path.read_bytes()
        self.doc = json.loads(self.original)

    def bump(self, marker: int) -> None:
        self.doc[_KEY]["updatedAt"] = 1800000000000 + marker
        self._write(json.dumps(self.doc, indent=2).encode())

    def restore(self) -> None:
        self._write(self.original)

    def _write(self, data: bytes) -> None:
        tmp = self.path.with_name("sessions.json.bench.tmp")
        tmp.write_bytes(data)
        tmp.replace(self.path)


def _append(
    appender: Appender, marker: int, node: tuple[dict[str, object], int] | None, index: _Index | None = None
) -> None:
    appender.append(marker)
    if node is not None:
        _bump(appender, node[0], 1800000000000 + marker)  # past every node of the bench stores
    if index is not None:
        index.bump(marker)


if __name__ == "__main__":
    main()
