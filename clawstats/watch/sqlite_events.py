"""The events of a SQLite agent's sessions (``transcript_events``): which are new since the last read
and whether any were deleted below a session's cursor (``seq``), read into each session's
:class:`~clawstats.watch.tail.Tail` (used as a cursor), in the scanning process or, for a first
read of many events, in worker processes (:mod:`.sqlite_cold`).

:class:`SessionEvents` is the base of :class:`~clawstats.watch.sqlite_store.SqliteAgent`: the
agent's state is set by its constructor and read and written here by the same single writer.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection

import zstandard

from clawstats.core.health import HealthLog
from clawstats.core.records import BadRecord, decode_line
from clawstats.core.usage import Pricer
from clawstats.watch.layout import AgentSource
from clawstats.watch.source import cursor_id
from clawstats.watch.sqlite_access import event_at, event_bytes
from clawstats.watch.sqlite_cold import PARALLEL_MIN_EVENTS, fold_events, keeps_segment, read_sessions
from clawstats.watch.tail import FileId, Tail
from clawstats.watch.tail_image import adopt

__all__ = ["SessionEvents"]

_EVENTS_AFTER = (
    "SELECT seq, event_json, event_zstd FROM transcript_events WHERE session_id = ? AND seq >= ? ORDER BY seq"
)
_EVENTS_BELOW = (
    "SELECT seq, event_json, event_zstd FROM transcript_events WHERE session_id = ? AND seq < ? ORDER BY seq"
)


class SessionEvents:
    """Per-session event cursors of one agent database (see :class:`SqliteAgent` for each field)."""

    source: AgentSource
    workers: int
    price: Pricer | None
    health: HealthLog
    tails: dict[str, Tail]
    events_read: int
    adopted: int
    below: dict[str, int]
    changed_stats: set[str]
    _restored: dict[str, Tail]
    _last_rowid: int
    _last_event: tuple[bytes, int] | None
    _events_total: int | None
    _named: dict[str, int]
    _unnamed: set[str]
    _zstd: zstandard.ZstdDecompressor
    _written: dict[str, float]
    _oldest_written: float

    _ids: dict[str, str]

    def _stats_id(self, sid: str) -> str:
        """``<agentId>/<sessionId>``: one string per session for its source, cursor and joins (a
        node that moves, a worker's image and a cursor restored from the cache would each bring
        another copy): the cursor's, else the one made in this read."""
        made = cursor_id(self.source.agent_id, sid)
        tail = self.tails.get(made)
        if tail is not None:
            return tail.path
        return self._ids.setdefault(made, made)

    def _cursor(self, sid: str, db_id: FileId) -> Tail:
        stats_id = self._stats_id(sid)
        tail = self.tails.get(stats_id)
        if tail is not None and tail.file_id == db_id:
            return tail
        restored = self._restored.pop(stats_id, None)
        if restored is not None and restored.file_id is not None and restored.file_id.ino == db_id.ino:
            tail = restored
            tail.path = stats_id  # the source's string, not the cache's copy
        else:
            tail = Tail(stats_id)  # new session, or the database file was replaced: from seq 0
        tail.use_price(self.price)
        tail.file_id = db_id
        self.tails[stats_id] = tail
        self.changed_stats.add(stats_id)
        return tail

    def _read_events(
        self, db: sqlite3.Connection, touched: set[str], full: bool, counting: bool, db_id: FileId
    ) -> None:
        for sid in self._unnamed:  # no node names it now: its cursor and statistics go
            if self.tails.pop(self._stats_id(sid), None) is not None:
                self.changed_stats.add(self._stats_id(sid))
            self.below.pop(sid, None)
        self._unnamed = set()
        sessions = self._named
        top_rowid = db.execute("SELECT max(rowid) FROM transcript_events").fetchone()[0] or 0
        newest: dict[str, tuple[int, int]] = {}
        # The table has no AUTOINCREMENT: the newest events deleted, the next insert reuses their
        # rowids, so max(rowid) and count(*) can stay as they were. The event at the last rowid
        # seen tells: another one there means reused rowids (check every session).
        reused = self._last_rowid > 0 and event_at(db, self._last_rowid) != self._last_event
        # A change with no new event and no moved node: most often a write to another table (the
        # runtime trace, caches), else a deletion or a rewrite. A count of every event (in C, over
        # the smallest index; at most every ``deletion_check_s``) tells them apart; only a count
        # other than the events read checks every session's newest seq.
        quiet = top_rowid == self._last_rowid and not touched and not reused
        if quiet and not full and self._events_total is not None:
            if not counting:
                return
            (count,) = db.execute("SELECT count(*) FROM transcript_events").fetchone()
            if count == self._events_total:
                return
        mixed = False
        if counting and not quiet and not full and not reused and self._events_total is not None:
            # New events, and a deletion elsewhere may hide under them: the count is due now, so
            # it is compared with what was known plus the new events (else it would be skipped).
            (count,) = db.execute("SELECT count(*) FROM transcript_events").fetchone()
            (new,) = db.execute(
                "SELECT count(*) FROM transcript_events WHERE rowid > ?", (max(self._last_rowid, 0),)
            ).fetchone()
            mixed = count != self._events_total + new
        if full or quiet or mixed or reused or self._last_rowid < 0 or top_rowid < self._last_rowid:
            self._events_total = 0
            for raw, top, count in db.execute(
                "SELECT session_id, max(seq), count(*) FROM transcript_events GROUP BY session_id"
            ):
                newest[raw.decode("utf-8", "replace")] = (top, count)
                self._events_total += count
            sids: Collection[str] = sessions.keys()
        else:  # only sessions with events past the last rowid seen, or whose node moved
            # No DISTINCT: SQLite would answer it by walking the whole (session_id, seq) index.
            new = db.execute("SELECT session_id FROM transcript_events WHERE rowid > ?", (self._last_rowid,))
            named = [raw.decode("utf-8", "replace") for (raw,) in new]
            if self._events_total is not None:
                # A deletion hidden by new events makes this too high: the next quiet change sees it.
                self._events_total += len(named)
            sids = {sid for sid in {*named, *touched} if sid in sessions}
            for sid in sids:
                top, count = db.execute(
                    "SELECT max(seq), count(*) FROM transcript_events WHERE session_id = ?", (sid,)
                ).fetchone()
                if top is not None:
                    newest[sid] = (top, count)
        self._last_rowid = top_rowid
        self._last_event = event_at(db, top_rowid)
        adopted = self._read_fresh(sids, newest, db_id)
        for sid in sorted(sids):
            if sid not in adopted:
                self._follow(db, sid, self._cursor(sid, db_id), newest.get(sid))

    def _read_fresh(self, sids: Collection[str], newest: dict[str, tuple[int, int]], db_id: FileId) -> set[str]:
        """The sessions never read, read by worker processes when they hold enough events
        (:mod:`.sqlite_cold`); the ones adopted. A session whose events the worker found other
        than this read transaction counted is left to it."""
        if self.workers < 2:
            return set()
        tails, restored = self.tails, self._restored
        fresh = {
            sid: newest[sid]
            for sid in sids
            if sid in newest and self._stats_id(sid) not in tails and self._stats_id(sid) not in restored
        }
        if sum(count for _top, count in fresh.values()) < PARALLEL_MIN_EVENTS:
            return set()
        adopted: set[str] = set()
        for read in read_sessions(self.source.store, fresh, self.workers, db_id, self.price):
            if read.events != fresh[read.sid][1]:
                continue  # deleted or rewritten meanwhile: read again in this transaction
            tail = adopt(read.image, self.price)
            tail.path = self._stats_id(read.sid)  # the source's string, not the worker's copy
            tails[tail.path] = tail
            self.below[read.sid] = read.events
            self.events_read += read.events
            self.changed_stats.add(tail.path)
            for kind, (n, detail) in read.skipped.items():
                self.health.count(self.source.store, kind, detail, n)
            adopted.add(read.sid)
        self.adopted += len(adopted)
        return adopted

    def _follow(self, db: sqlite3.Connection, sid: str, tail: Tail, newest: tuple[int, int] | None) -> None:
        top, count = newest if newest is not None else (None, 0)
        known = self.below.get(sid)  # None: a cursor restored from the cache, trusted
        changed = False
        if tail.offset and (top is None or top < tail.offset - 1):
            tail.restart()  # events were deleted or rewritten below our cursor: read again
            changed = True
        elif top is not None and 0 < tail.offset <= top:
            self._rebuild(db, sid, tail)
        if tail.offset == 0:
            known = 0
        whole = known == 0  # read from the first event (first read, or again)
        read, more = self._read_session(db, sid, tail, top)
        changed |= more
        if known is not None and known + read != count:
            # Events below the cursor were deleted (or inserted) while a new one may have been
            # added above it: read the session again, in this same read transaction.
            tail.restart()
            self._read_session(db, sid, tail, top)
            changed = whole = True
        self.below[sid] = count
        if changed:
            tail.stats.settle()  # as a file tail does when a read ends: an idle session keeps less
            tail.idle = 0
            if whole:  # most of a store is idle: packed at once, as a file tail's whole read
                tail.pack(segment=keeps_segment(tail))
            else:
                if not self._written:
                    self._oldest_written = time.monotonic()
                self._written[tail.path] = time.monotonic()
            tail.revision += 1
            self.changed_stats.add(tail.path)

    def _rebuild(self, db: sqlite3.Connection, sid: str, tail: Tail) -> None:
        """New events for a session packed without its context segment: its statistics folded
        again from its events below the cursor in a cursor of their own (as a first read folds
        them: equal to the bit; what they skipped not counted again), then take the place of the
        packed ones. Events below the cursor deleted meanwhile: read again from the first."""
        if tail.stats.seg_chars is None:  # (unpacked: the new events' fold would unpack it)
            return
        Tail.rereads += 1
        again = Tail(tail.path, tail.price)
        fold_events(db.execute(_EVENTS_BELOW, (sid, tail.offset)), again, self._zstd, HealthLog(), "", sid)
        if again.offset == tail.offset:
            again.stats.blob = tail.stats.blob  # its image until an event changes it (new ones may all be bad)
            tail.stats = again.stats
        else:
            tail.restart()

    def _read_session(self, db: sqlite3.Connection, sid: str, tail: Tail, top: int | None) -> tuple[int, bool]:
        """Fold the events after the cursor into ``tail``: (events read, whether statistics changed)."""
        if top is None or top < tail.offset:
            return 0, False
        read, changed = 0, False
        for seq, event_json, event_zstd in db.execute(_EVENTS_AFTER, (sid, tail.offset)):
            tail.offset = seq + 1
            read += 1
            self.events_read += 1
            raw = event_bytes(self._zstd, self.health, self.source.store, sid, event_json, event_zstd)
            if raw is None:
                continue
            try:
                tail.stats.apply(decode_line(raw))
                changed = True
            except BadRecord as bad:
                self.health.count(self.source.store, bad.kind, f"{sid} seq {seq}: {bad.detail}")
        return read, changed
