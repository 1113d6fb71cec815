"""SQLite store of OpenClaw >= 2026.8: ``agents/<id>/agent/openclaw-agent.sqlite`` (WAL).

Rows come from ``session_nodes.entry_json`` (same fields as a ``sessions.json`` row),
transcript events from ``transcript_events`` (plain ``event_json`` or zstd ``event_zstd``),
read incrementally: the last ``seq`` per session is remembered and only newer events are
fetched, for the sessions whose node changed or that have events past the last ``rowid`` seen
(the safety scan checks every session's newest ``seq``); ``entry_json`` is fetched only for
nodes whose ``updated_at`` or session id moved; nothing is queried while ``PRAGMA
data_version`` and the ``-wal`` file's size and mtime are unchanged. OpenClaw is never
disturbed: a read-only connection (``mode=ro``, never ``immutable``), short read transactions,
a busy timeout, no writes, no checkpoints.
"""

from __future__ import annotations

import os
import sqlite3

import zstandard

from clawstats.core.health import HealthLog
from clawstats.core.records import DEFAULT_MAX_LINE_BYTES, BadRecord, IndexRow, decode_line, parse_index_row
from clawstats.core.usage import Pricer
from clawstats.watch.layout import AgentSource
from clawstats.watch.source import AgentScan, Source
from clawstats.watch.tail import FileId, Tail

BUSY_TIMEOUT_MS = 2000
_EVENTS_AFTER = (
    "SELECT seq, event_json, event_zstd FROM transcript_events WHERE session_id = ? AND seq >= ? ORDER BY seq"
)
_NODES = "SELECT session_key, current_session_id, updated_at FROM session_nodes"
_ENTRY = "SELECT entry_json FROM session_nodes WHERE session_key = CAST(? AS TEXT)"


class SqliteAgent:
    """Reader state of one agent database; same shape as ``FileAgent`` (``prepare``, ``scan``,
    ``sources``, ``tails``), called by the store's single writer."""

    def __init__(
        self,
        source: AgentSource,
        health: HealthLog,
        restored: dict[str, Tail] | None = None,
        price: Pricer | None = None,
    ) -> None:
        self.source = source
        self.price = price  # prices calls without a recorded cost, one call at a time
        self.health = health
        self.db: sqlite3.Connection | None = None
        self.marker: tuple[int, int, int, int] | None = None  # data_version, db and wal (size, mtime)
        self.nodes: dict[str, tuple[int, IndexRow | None, str]] = {}  # key -> (updated_at, row, sessionId)
        # Per session a Tail used as a cursor (by stats id "<db>#<sessionId>"): ``offset`` is the
        # next ``seq`` to read; it persists in the index cache as file tails do.
        self.tails: dict[str, Tail] = {}
        self.sources: dict[str, Source] = {}
        self.events_read = 0  # lifetime total, for tests and benchmarks
        # Identity (device, inode) of the file the connection was opened on: a database replaced
        # by rename (a restore, a migration) is a new inode, and the open connection would go on
        # reading the old, unlinked one.
        self.opened: tuple[int, int] | None = None
        # Per sessionId, how many events lie below the cursor: fewer in the database means some
        # were deleted under it (a new one above may hide that from max(seq)).
        self.below: dict[str, int] = {}
        self._restored = restored if restored is not None else {}
        self._last_rowid = -1  # events above it are new (-1: check every session's newest seq)
        self._newest_node = 0  # the newest session_nodes.updated_at seen
        self._sessions: set[str] | None = None  # session ids of the nodes (rebuilt when a node moves)
        self._zstd = zstandard.ZstdDecompressor()
        self._changed_keys: set[str] = set()
        self._changed_stats: set[str] = set()

    def _connect(self) -> sqlite3.Connection:
        st = os.stat(self.source.store)  # before connecting: a replacement in between is seen next time
        if self.db is not None and self.opened != (st.st_dev, st.st_ino):
            self._close()  # replaced under us: reopen on the new file
        if self.db is None:
            self.opened = (st.st_dev, st.st_ino)
            uri = f"file:{self.source.store}?mode=ro"
            db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            # Bytes, not str: one row with invalid UTF-8 must be a counted skip, not an error
            # that stops reading the whole database.
            db.text_factory = bytes
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA query_only=1")
            self.db = db
        return self.db

    def _close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        self.marker = None
        self._last_rowid = -1

    def _marker(self, db: sqlite3.Connection) -> tuple[int, int, int, int]:
        version = db.execute("PRAGMA data_version").fetchone()[0]
        try:
            wal = os.stat(self.source.store + "-wal")
            wal_mark = wal.st_size ^ wal.st_mtime_ns
        except FileNotFoundError:
            wal_mark = 0
        st = os.stat(self.source.store)
        return (version, st.st_ino, st.st_size ^ st.st_mtime_ns, wal_mark)

    def prepare(self) -> list[str]:
        """Nothing to read in bulk: events are read by ``seq`` in ``scan``."""
        return []

    def scan(self, changed: set[str] | None) -> AgentScan:
        """Read what is new. ``changed`` None (the safety scan) checks every session's newest seq."""
        path = self.source.store
        try:
            db = self._connect()
            marker = self._marker(db)
            if marker != self.marker or changed is None:
                db.execute("BEGIN")  # one short read transaction: rows and events agree
                try:
                    full = changed is None or self.marker is None
                    touched = self._read_rows(db, full)
                    self._read_events(db, touched, full)
                finally:
                    db.execute("COMMIT")
                self.marker = marker
            self.health.clear_condition(path)
        except (sqlite3.Error, OSError) as exc:
            self._close()
            self.health.set_condition(path, f"cannot read the SQLite store: {exc}")
        result = AgentScan(self._changed_keys, self._changed_stats)
        self._changed_keys, self._changed_stats = set(), set()
        self._restored = {}
        return result

    def _stats_id(self, sid: str) -> str:
        return f"{self.source.store}#{sid}"

    def _read_rows(self, db: sqlite3.Connection, full: bool) -> set[str]:
        """Read the nodes that moved; returns the session ids whose node changed.

        Between safety scans only nodes with ``updated_at`` at or past the newest seen are read
        (OpenClaw bumps it on every write of a node); a different node count (one deleted) or a
        safety scan reads them all."""
        touched: set[str] = set()
        if not full and self.nodes:
            (count,) = db.execute("SELECT count(*) FROM session_nodes").fetchone()
            full = count != len(self.nodes)
        if full:
            nodes: dict[str, tuple[int, IndexRow | None, str]] = {}
            found_nodes = db.execute(_NODES)
        else:
            nodes = dict(self.nodes)
            found_nodes = db.execute(_NODES + " WHERE updated_at >= ?", (self._newest_node,))
        for raw_key, raw_sid, updated_at in found_nodes:
            key = raw_key.decode("utf-8", "replace")
            sid = raw_sid.decode("utf-8", "replace")
            if isinstance(updated_at, int) and updated_at > self._newest_node:
                self._newest_node = updated_at
            old = self.nodes.get(key)
            if old is not None and old[0] == updated_at and old[2] == sid:
                nodes[key] = old
                continue
            found = db.execute(_ENTRY, (raw_key,)).fetchone()
            try:
                row: IndexRow | None = parse_index_row(found[0] if found else b"")
            except BadRecord as bad:
                self.health.count(self.source.store, bad.kind, key)
                row = None
            nodes[key] = (updated_at, row, sid)
            touched.add(sid)
            self._changed_keys.add(key)
        if full:  # only a full read can find a node gone
            self._changed_keys.update(k for k in self.nodes if k not in nodes)
        self.nodes = nodes
        agent = self.source.agent_id
        for key in self._changed_keys:
            node = nodes.get(key)
            if node is None or node[1] is None:
                self.sources.pop(key, None)
            else:
                self.sources[key] = Source(key, agent, node[1], self._stats_id(node[2]))
        return touched

    def _cursor(self, sid: str, db_id: FileId) -> Tail:
        stats_id = self._stats_id(sid)
        tail = self.tails.get(stats_id)
        if tail is not None and tail.file_id == db_id:
            return tail
        restored = self._restored.pop(stats_id, None)
        if restored is not None and restored.file_id is not None and restored.file_id.ino == db_id.ino:
            tail = restored
        else:
            tail = Tail(stats_id)  # new session, or the database file was replaced: from seq 0
        tail.use_price(self.price)
        tail.file_id = db_id
        self.tails[stats_id] = tail
        self._changed_stats.add(stats_id)
        return tail

    def _read_events(self, db: sqlite3.Connection, touched: set[str], full: bool) -> None:
        if full or touched or self._sessions is None:  # a node changed: sessions may have gone
            sessions = self._sessions = {sid for _u, _r, sid in self.nodes.values()}
            wanted = {self._stats_id(sid) for sid in sessions}
            for stats_id in [s for s in self.tails if s not in wanted]:
                del self.tails[stats_id]
                self._changed_stats.add(stats_id)
            for sid in [sid for sid in self.below if sid not in sessions]:
                del self.below[sid]
        sessions = self._sessions
        st = os.stat(self.source.store)
        db_id = FileId(st.st_dev, st.st_ino, 0, 0)
        top_rowid = db.execute("SELECT max(rowid) FROM transcript_events").fetchone()[0] or 0
        newest: dict[str, tuple[int, int]] = {}
        # A change with no new event and no moved node was a deletion or a rewrite: check all.
        quiet = top_rowid == self._last_rowid and not touched
        if full or quiet or self._last_rowid < 0 or top_rowid < self._last_rowid:
            newest.update(
                (sid.decode("utf-8", "replace"), (top, count))
                for sid, top, count in db.execute(
                    "SELECT session_id, max(seq), count(*) FROM transcript_events GROUP BY session_id"
                )
            )
            sids = sessions
        else:  # only sessions with events past the last rowid seen, or whose node moved
            # No DISTINCT: SQLite would answer it by walking the whole (session_id, seq) index.
            new = db.execute("SELECT session_id FROM transcript_events WHERE rowid > ?", (self._last_rowid,))
            sids = ({sid.decode("utf-8", "replace") for (sid,) in new} | touched) & sessions
            for sid in sids:
                top, count = db.execute(
                    "SELECT max(seq), count(*) FROM transcript_events WHERE session_id = ?", (sid,)
                ).fetchone()
                if top is not None:
                    newest[sid] = (top, count)
        self._last_rowid = top_rowid
        for sid in sorted(sids):
            self._follow(db, sid, self._cursor(sid, db_id), newest.get(sid))

    def _follow(self, db: sqlite3.Connection, sid: str, tail: Tail, newest: tuple[int, int] | None) -> None:
        top, count = newest if newest is not None else (None, 0)
        known = self.below.get(sid)  # None: a cursor restored from the cache, trusted
        changed = False
        if tail.offset and (top is None or top < tail.offset - 1):
            tail.restart()  # events were deleted or rewritten below our cursor: read again
            changed = True
        if tail.offset == 0:
            known = 0
        read, more = self._read_session(db, sid, tail, top)
        changed |= more
        if known is not None and known + read != count:
            # Events below the cursor were deleted (or inserted) while a new one may have been
            # added above it: read the session again, in this same read transaction.
            tail.restart()
            self._read_session(db, sid, tail, top)
            changed = True
        self.below[sid] = count
        if changed:
            tail.revision += 1
            self._changed_stats.add(tail.path)

    def _read_session(self, db: sqlite3.Connection, sid: str, tail: Tail, top: int | None) -> tuple[int, bool]:
        """Fold the events after the cursor into ``tail``: (events read, whether statistics changed)."""
        if top is None or top < tail.offset:
            return 0, False
        read, changed = 0, False
        for seq, event_json, event_zstd in db.execute(_EVENTS_AFTER, (sid, tail.offset)):
            tail.offset = seq + 1
            read += 1
            self.events_read += 1
            raw = self._event_bytes(sid, event_json, event_zstd)
            if raw is None:
                continue
            try:
                tail.stats.apply(decode_line(raw))
                changed = True
            except BadRecord as bad:
                self.health.count(self.source.store, bad.kind, f"{sid} seq {seq}: {bad.detail}")
        return read, changed

    def _event_bytes(self, sid: str, event_json: str | bytes | None, event_zstd: bytes | None) -> bytes | None:
        if event_json is not None:
            return event_json.encode() if isinstance(event_json, str) else bytes(event_json)
        if event_zstd is None:
            self.health.count(self.source.store, "emptyEvent", sid)
            return None
        try:
            return self._zstd.decompress(event_zstd, max_output_size=DEFAULT_MAX_LINE_BYTES)
        except zstandard.ZstdError as exc:
            self.health.count(self.source.store, "corruptEvent", f"{sid}: {exc}")
            return None
