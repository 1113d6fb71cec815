"""SQLite store of OpenClaw >= 2026.8: ``agents/<id>/agent/openclaw-agent.sqlite`` (WAL).

Rows come from ``session_nodes.entry_json`` (same fields as a ``sessions.json`` row),
transcript events from ``transcript_events`` (plain ``event_json`` or zstd ``event_zstd``),
read incrementally: the last ``seq`` per session is remembered and only newer events are
fetched; nothing is queried while the database's and the ``-wal`` file's identity, size and
mtime and the ``-shm`` wal-index header are unchanged.

Reading never creates or changes a file beside the database, and works in a directory the
reader cannot write (a read-only volume, another user's state). SQLite (>= 3.22) can open a WAL
database read-only only if its ``-wal`` and ``-shm`` exist or can be created, or if it is opened
``immutable``. So: while a writer has the database open (a ``-wal`` file exists) a ``mode=ro``
connection shares the writer's wal-index; a WAL database without a ``-wal`` file has no
connection open (the gateway stopped) and is read ``mode=ro&immutable=1``, which creates nothing;
that read is kept only if the file's identity, size and mtime are the same after it as before (a
writer that started meanwhile and checkpointed into it makes us read again). A connection lives
for one short read transaction: one held open would keep the gateway, on its way out, from
checkpointing and removing its ``-wal`` and ``-shm``; and each read opens the file the path
names now, so a database replaced by rename (a restore, a migration) is followed. A busy
timeout, no writes, no checkpoints.
"""

from __future__ import annotations

import os
import sqlite3
import time
from urllib.parse import quote

import zstandard

from clawstats.core.health import HealthLog
from clawstats.core.records import DEFAULT_MAX_LINE_BYTES, BadRecord, IndexRow, decode_line, parse_index_row
from clawstats.core.transcript import TranscriptStats
from clawstats.core.usage import Pricer
from clawstats.watch.cache import IndexCache
from clawstats.watch.layout import AgentSource, read_regular
from clawstats.watch.source import Source
from clawstats.watch.tail import FileId, Tail

BUSY_TIMEOUT_MS = 2000
WAL_INDEX_HEADER_BYTES = 48  # the -shm header: change counter, last frame, salts (sqlite.org/walformat.html)
READ_ATTEMPTS = 3
#: OpenClaw creates an agent's database file, then its tables: "no such table" in a database never
#: read before is normal for a moment. Only one that lasts this long is reported (health, log).
SCHEMA_GRACE_S = 5.0
_EVENTS_AFTER = (
    "SELECT seq, event_json, event_zstd FROM transcript_events WHERE session_id = ? AND seq >= ? ORDER BY seq"
)


class SqliteAgent:
    """Reader state of one agent database; ``scan`` is called by the store's single writer."""

    def __init__(
        self, source: AgentSource, health: HealthLog, cache: IndexCache | None = None, price: Pricer | None = None
    ) -> None:
        self.source = source
        self.price = price  # prices calls without a recorded cost, one call at a time
        self.health = health
        self.cache = cache
        self.marker: tuple[object, ...] | None = None  # db and wal identity/size/mtime, wal-index header
        self.rows: dict[str, tuple[int, IndexRow | None, str]] = {}  # key -> (updated_at, row, sessionId)
        # Per sessionId a Tail used as a cursor: ``offset`` is the next ``seq`` to read, and the
        # same record persists in the index cache as file tails do (path "<db>#<sessionId>").
        self.tails: dict[str, Tail] = {}
        self.sources: list[Source] = []
        self.events_read = 0  # lifetime total, for tests and benchmarks
        # Per sessionId, how many events lie below the cursor: fewer in the database means some
        # were deleted under it (a new one above may hide that from max(seq)).
        self.below: dict[str, int] = {}
        self.schema_grace_s = SCHEMA_GRACE_S
        self.unready_since: float | None = None  # first "no such table" of a never-read database
        self._zstd = zstandard.ZstdDecompressor()

    def _connect(self) -> tuple[sqlite3.Connection, bool]:
        """A read-only connection and whether it reads an ``immutable`` snapshot (no writer)."""
        path = self.source.store
        header = read_regular(path, 20, whole=False)  # never blocks: a FIFO here is a condition
        # A WAL database without a -wal file has no connection open: nothing can change it while
        # it is read, except a writer starting now (checked after the read). Otherwise (a writer
        # present, or a rollback-journal database) the normal locking read is the safe one.
        immutable = header[18:20] == b"\x02\x02" and not os.path.exists(path + "-wal")
        uri = f"file:{quote(path)}?mode=ro" + ("&immutable=1" if immutable else "")
        db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        # Bytes, not str: one row with invalid UTF-8 must be a counted skip, not an error
        # that stops reading the whole database.
        db.text_factory = bytes
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA query_only=1")
        return db, immutable

    def _marker(self) -> tuple[object, ...]:
        path = self.source.store
        st = os.stat(path)
        try:
            wal = os.stat(path + "-wal")
            wal_mark: tuple[int, ...] = (wal.st_ino, wal.st_size, wal.st_mtime_ns)
        except FileNotFoundError:
            wal_mark = ()
        try:
            with open(path + "-shm", "rb") as shm:
                header = shm.read(WAL_INDEX_HEADER_BYTES)
        except FileNotFoundError:
            header = b""
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, wal_mark, header)

    def _file_mark(self) -> tuple[int, int, int, int]:
        st = os.stat(self.source.store)
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _discard(self) -> None:
        """Forget what was read: the next read starts over (from the index cache where it has it)."""
        self.rows = {}
        self.tails = {}
        self.below = {}
        self.sources = []
        self.marker = None

    def _read(self) -> None:
        for _attempt in range(READ_ATTEMPTS):
            before = self._file_mark()  # before connecting: the file the connection reads, or older
            db, immutable = self._connect()
            try:
                db.execute("BEGIN")  # one short read transaction: rows and events agree
                self._read_rows(db)
                self._read_events(db, FileId(before[0], before[1], 0, 0))
                db.execute("COMMIT")
            finally:
                db.close()
            after = self._file_mark()
            # Kept unless the file was replaced meanwhile (the cursors would carry the wrong
            # identity), or changed under an immutable read (what was read may be torn).
            if after[:2] == before[:2] and (not immutable or after == before):
                return
            self._discard()
        raise sqlite3.OperationalError(f"the database changed during each of {READ_ATTEMPTS} reads")

    def scan(self, stats_of: dict[str, tuple[int, TranscriptStats]]) -> list[Source]:
        path = self.source.store
        try:
            marker = self._marker()
            if marker != self.marker:
                self._read()
                self.marker = marker
            self.health.clear_condition(path)
            self.unready_since = None
        except (sqlite3.Error, OSError) as exc:
            creating = self._being_created(exc)
            self.marker = None
            if not creating:
                self.health.set_condition(path, f"cannot read the SQLite store: {exc}")
        for tail in self.tails.values():
            stats_of[tail.path] = (tail.revision, tail.stats)
        return self.sources

    def _being_created(self, exc: Exception) -> bool:
        """A database never read that has no tables yet, for less than ``schema_grace_s``."""
        if self.marker is not None or self.rows or "no such table" not in str(exc):
            return False
        try:
            db, _immutable = self._connect()
            try:
                if db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]:
                    return False  # some tables but not ours: not a database being created
            finally:
                db.close()
        except (sqlite3.Error, OSError):
            return False
        now = time.monotonic()
        if self.unready_since is None:
            self.unready_since = now
        return now - self.unready_since < self.schema_grace_s

    def _read_rows(self, db: sqlite3.Connection) -> None:
        rows: dict[str, tuple[int, IndexRow | None, str]] = {}
        for raw_key, raw_sid, entry_json, updated_at in db.execute(
            "SELECT session_key, current_session_id, entry_json, updated_at FROM session_nodes"
        ):
            key = raw_key.decode("utf-8", "replace")
            sid = raw_sid.decode("utf-8", "replace")
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

    def _cursor(self, sid: str, db_id: FileId) -> Tail:
        tail = self.tails.get(sid)
        if tail is not None and tail.file_id == db_id:
            return tail
        path = f"{self.source.store}#{sid}"
        restored = self.cache.restore(path) if self.cache is not None else None
        if restored is not None and restored.file_id is not None and restored.file_id.ino == db_id.ino:
            tail = restored
        else:
            tail = Tail(path)  # new session, or the database file was replaced: from seq 0
        tail.use_price(self.price)
        tail.file_id = db_id
        self.tails[sid] = tail
        return tail

    def _read_events(self, db: sqlite3.Connection, db_id: FileId) -> None:
        wanted = {sid for _u, _r, sid in self.rows.values()}
        for sid in [sid for sid in self.tails if sid not in wanted]:
            del self.tails[sid]
        newest: dict[str, tuple[int, int]] = {
            sid.decode("utf-8", "replace"): (top, count)
            for sid, top, count in db.execute(
                "SELECT session_id, max(seq), count(*) FROM transcript_events GROUP BY session_id"
            )
        }
        for sid in [sid for sid in self.below if sid not in wanted]:
            del self.below[sid]
        for sid in sorted(wanted):
            tail = self._cursor(sid, db_id)
            top, count = newest.get(sid, (None, 0))
            known = self.below.get(sid)  # None: a cursor restored from the cache, trusted
            if tail.offset and (top is None or top < tail.offset - 1):
                tail.restart()  # events were deleted or rewritten below our cursor: read again
            if tail.offset == 0:
                known = 0
            read, changed = self._read_session(db, sid, tail, top)
            if known is not None and known + read != count:
                # Events below the cursor were deleted (or inserted) while a new one may have
                # been added above it: read the session again, in this same read transaction.
                tail.restart()
                self._read_session(db, sid, tail, top)
                changed = True
            self.below[sid] = count
            if changed:
                tail.revision += 1

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
