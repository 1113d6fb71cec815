"""SQLite store of OpenClaw >= 2026.8: ``agents/<id>/agent/openclaw-agent.sqlite`` (WAL).

Rows come from ``session_nodes.entry_json`` (same fields as a ``sessions.json`` row),
transcript events from ``transcript_events`` (plain ``event_json`` or zstd ``event_zstd``),
read incrementally: the last ``seq`` per session is remembered and only newer events are
fetched; nothing is queried while ``PRAGMA data_version`` and the ``-wal`` file's size and
mtime are unchanged. OpenClaw is never disturbed: a read-only connection (``mode=ro``, never
``immutable``), short read transactions, a busy timeout, no writes, no checkpoints.
"""

from __future__ import annotations

import os
import sqlite3

import zstandard

from clawstats.core.health import HealthLog
from clawstats.core.records import BadRecord, IndexRow, decode_line, parse_index_row
from clawstats.core.transcript import TranscriptStats
from clawstats.watch.layout import AgentSource
from clawstats.watch.source import Source

BUSY_TIMEOUT_MS = 2000
_MAX_EVENT_BYTES = 64 << 20
_EVENTS_AFTER = (
    "SELECT seq, event_json, event_zstd FROM transcript_events WHERE session_id = ? AND seq > ? ORDER BY seq"
)


class SqliteAgent:
    """Reader state of one agent database; ``scan`` is called by the store's single writer."""

    def __init__(self, source: AgentSource, health: HealthLog) -> None:
        self.source = source
        self.health = health
        self.db: sqlite3.Connection | None = None
        self.marker: tuple[int, int, int, int] | None = None  # data_version, db and wal (size, mtime)
        self.rows: dict[str, tuple[int, IndexRow | None, str]] = {}  # key -> (updated_at, row, sessionId)
        self.stats: dict[str, tuple[int, TranscriptStats, int]] = {}  # sessionId -> (revision, stats, last seq)
        self.sources: list[Source] = []
        self._zstd = zstandard.ZstdDecompressor()

    def _connect(self) -> sqlite3.Connection:
        if self.db is None:
            uri = f"file:{self.source.store}?mode=ro"
            db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA query_only=1")
            self.db = db
        return self.db

    def _close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        self.marker = None

    def _marker(self, db: sqlite3.Connection) -> tuple[int, int, int, int]:
        version = db.execute("PRAGMA data_version").fetchone()[0]
        try:
            wal = os.stat(self.source.store + "-wal")
            wal_mark = wal.st_size ^ wal.st_mtime_ns
        except FileNotFoundError:
            wal_mark = 0
        st = os.stat(self.source.store)
        return (version, st.st_ino, st.st_size ^ st.st_mtime_ns, wal_mark)

    def scan(self, stats_of: dict[str, tuple[int, TranscriptStats]]) -> list[Source]:
        path = self.source.store
        try:
            db = self._connect()
            marker = self._marker(db)
            if marker != self.marker:
                db.execute("BEGIN")  # one short read transaction: rows and events agree
                try:
                    self._read_rows(db)
                    self._read_events(db)
                finally:
                    db.execute("COMMIT")
                self.marker = marker
            self.health.clear_condition(path)
        except (sqlite3.Error, OSError) as exc:
            self._close()
            self.health.set_condition(path, f"cannot read the SQLite store: {exc}")
        for sid, (revision, stats, _seq) in self.stats.items():
            stats_of[f"{path}#{sid}"] = (revision, stats)
        return self.sources

    def _read_rows(self, db: sqlite3.Connection) -> None:
        rows: dict[str, tuple[int, IndexRow | None, str]] = {}
        for key, sid, entry_json, updated_at in db.execute(
            "SELECT session_key, current_session_id, entry_json, updated_at FROM session_nodes"
        ):
            old = self.rows.get(key)
            if old is not None and old[0] == updated_at and old[2] == sid:
                rows[key] = old
                continue
            try:
                row: IndexRow | None = parse_index_row(entry_json)
            except BadRecord as bad:
                self.health.count(self.source.store, bad.kind, key)
                row = None
            rows[key] = (updated_at, row, sid)
        self.rows = rows
        agent = self.source.agent_id
        path = self.source.store
        self.sources = [
            Source(key, agent, row, f"{path}#{sid}") for key, (_u, row, sid) in sorted(rows.items()) if row is not None
        ]

    def _read_events(self, db: sqlite3.Connection) -> None:
        wanted = {sid for _u, _r, sid in self.rows.values()}
        for sid in list(self.stats):
            if sid not in wanted:
                del self.stats[sid]
        for sid in sorted(wanted):
            revision, stats, last_seq = self.stats.get(sid, (0, TranscriptStats(), -1))
            changed = False
            for seq, event_json, event_zstd in db.execute(_EVENTS_AFTER, (sid, last_seq)):
                last_seq = seq
                raw = self._event_bytes(sid, event_json, event_zstd)
                if raw is None:
                    continue
                try:
                    stats.apply(decode_line(raw))
                    changed = True
                except BadRecord as bad:
                    self.health.count(self.source.store, bad.kind, f"{sid} seq {seq}: {bad.detail}")
            self.stats[sid] = (revision + 1 if changed else revision, stats, last_seq)

    def _event_bytes(self, sid: str, event_json: str | bytes | None, event_zstd: bytes | None) -> bytes | None:
        if event_json is not None:
            return event_json.encode() if isinstance(event_json, str) else bytes(event_json)
        if event_zstd is None:
            self.health.count(self.source.store, "emptyEvent", sid)
            return None
        try:
            return self._zstd.decompress(event_zstd, max_output_size=_MAX_EVENT_BYTES)
        except zstandard.ZstdError as exc:
            self.health.count(self.source.store, "corruptEvent", f"{sid}: {exc}")
            return None
