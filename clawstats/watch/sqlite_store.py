"""SQLite store of OpenClaw >= 2026.8: ``agents/<id>/agent/openclaw-agent.sqlite`` (WAL).

Rows come from ``session_nodes.entry_json`` (same fields as a ``sessions.json`` row),
transcript events from ``transcript_events`` (plain ``event_json`` or zstd ``event_zstd``),
read incrementally: the last ``seq`` per session is remembered and only newer events are
fetched, for the sessions whose node changed or that have events past the last ``rowid`` seen;
``entry_json`` is fetched only for nodes whose ``updated_at`` or session id moved; nothing is
queried while the database's and the ``-wal`` file's identity, size and mtime and the ``-shm``
wal-index header are unchanged. Deletions are found by counting every node and, after a read
with no new event and no moved node (mostly a write to another table: the runtime trace,
caches), every event, at most every ``DELETION_CHECK_S``: a node count other than the nodes
known reads every node, an event count other than the events read checks every session's newest
``seq`` (so does another event at the last ``rowid`` seen: rowids reused after a deletion). The
work of a change follows the sessions it names: no map of every session is walked.

Reading never creates or changes a file beside the database: see :mod:`.sqlite_access`.

Reset/deleted transcript files left beside the database (``sessions/``) are this agent's too:
they are followed as file tails (:mod:`clawstats.watch.sqlite_archives`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

import zstandard

from clawstats.core.health import HealthLog
from clawstats.core.records import BadRecord, IndexRow, parse_index_row
from clawstats.core.usage import Pricer
from clawstats.watch.layout import AgentSource
from clawstats.watch.source import AgentScan, Before, Node, NodeSources, Source, cursor_id, note_before
from clawstats.watch.sqlite_access import connect, file_mark, marker
from clawstats.watch.sqlite_archives import ArchivesBeside
from clawstats.watch.sqlite_cold import keeps_segment
from clawstats.watch.sqlite_events import SessionEvents
from clawstats.watch.tail import DEFAULT_MAX_LINE_BYTES as TAIL_MAX_LINE_BYTES
from clawstats.watch.tail import FileId, Tail

READ_ATTEMPTS = 3
#: OpenClaw creates an agent's database file, then its tables: "no such table" in a database never
#: read before is normal for a moment. Only one that lasts this long is reported (health, log).
SCHEMA_GRACE_S = 5.0
#: A session's statistics unpacked by new events are packed again once none came for this long
#: (a file transcript's after two idle polls): the next event unpacks them, one load.
IDLE_PACK_S = 30.0
#: Deletions are found by counting every node and event, in C over the smallest index: O(rows),
#: so at most this often, not per commit (50,000 sessions hold millions of events).
DELETION_CHECK_S = 5.0
_NODES = "SELECT session_key, current_session_id, updated_at FROM session_nodes"
_ENTRY = "SELECT entry_json FROM session_nodes WHERE session_key = CAST(? AS TEXT)"


class SqliteAgent(SessionEvents):
    """Reader state of one agent database; same shape as ``FileAgent`` (``prepare``, ``scan``,
    ``sources``, ``tails``), called by the store's single writer."""

    def __init__(
        self,
        source: AgentSource,
        health: HealthLog,
        restored: dict[str, Tail] | None = None,
        price: Pricer | None = None,
        max_line_bytes: int = TAIL_MAX_LINE_BYTES,
        workers: int = 1,
    ) -> None:
        self.source = source
        self.workers = workers  # > 1: a first read of many events fans out to worker processes
        self.price = price  # prices calls without a recorded cost, one call at a time
        self.health = health
        self.marker: tuple[object, ...] | None = None  # db and wal identity/size/mtime, wal-index header
        # key -> its node: row (None: rejected), stats id (<agentId>/<the node's sessionId>), updated_at
        self.nodes: dict[str, Node] = {}
        # Per session a Tail used as a cursor (by stats id "<agentId>/<sessionId>", cursor_id): ``offset`` is the
        # next ``seq`` to read; it persists in the index cache as file tails do. Archive files
        # beside the database are here too, by path.
        self.tails: dict[str, Tail] = {}
        self.archived: dict[str, Source] = {}  # the archives' rows (sources: see the property)
        self._sources: NodeSources | None = None
        self.events_read = 0  # lifetime total, for tests and benchmarks
        self.adopted = 0  # lifetime count of sessions read by worker processes, for tests
        # Per sessionId, how many events lie below the cursor: fewer in the database means some
        # were deleted under it (a new one above may hide that from max(seq)).
        self.below: dict[str, int] = {}
        self.schema_grace_s = SCHEMA_GRACE_S
        self.deletion_check_s = DELETION_CHECK_S
        self.counts = 0  # lifetime count of reads that counted every node (and events), for tests
        self._counted_at = -DELETION_CHECK_S  # monotonic time of the last such read
        self._count_due = False  # a read since then did not count: a later scan does, when due
        self.unready_since: float | None = None  # first "no such table" of a never-read database
        self._restored = restored if restored is not None else {}
        self._last_rowid = -1  # events above it are new (-1: check every session's newest seq)
        self._last_event: tuple[bytes, int] | None = None  # (session id, seq) at ``_last_rowid``
        # How many events the database holds by what was read: counted whole by the last full
        # check, plus every event seen above ``_last_rowid`` since (None: not known).
        self._events_total: int | None = None
        self._newest_node = 0  # the newest session_nodes.updated_at seen
        # Per session id, how many nodes name it (kept by the nodes that move, so an append never
        # walks every node); a session id no node names any more loses its cursor.
        self._named: dict[str, int] = {}
        self._unnamed: set[str] = set()  # session ids whose last node moved away since the last read
        self.archives = ArchivesBeside(source.sessions_dir, source.agent_id, health, max_line_bytes)
        self._zstd = zstandard.ZstdDecompressor()
        # Since the last scan (the archives beside the database add theirs): what ``scan`` reports.
        self.changed_keys: Before = {}  # (with each key's source at the last scan: see ``note``)
        self.changed_stats: set[str] = set()
        self.idle_pack_s = IDLE_PACK_S
        self._ids: dict[str, str] = {}  # stats ids made in the read going on (see _stats_id)
        self._written: dict[str, float] = {}  # stats id -> when new events last unpacked it
        self._oldest_written = 0.0  # no entry of ``_written`` is older (it is walked only when due)

    @property
    def sources(self) -> NodeSources:
        """Row key -> Source: the nodes with a row, and the archives' rows (one view while
        ``nodes`` is the same dict: the joins read every row's source through it)."""
        found = self._sources
        if found is None or found.nodes is not self.nodes or found.archived is not self.archived:
            found = self._sources = NodeSources(self.nodes, self.archived)
        return found

    def note(self, keys: Iterable[str]) -> None:
        """Keys whose source is about to change: reported by the next scan, each with its source
        now (the store's joins take that one out)."""
        note_before(self.changed_keys, self.sources, keys)

    def _discard(self) -> None:
        """Forget what was read: the next read starts over (from the index cache where it has it).
        Every key and cursor known so far is reported changed (the store rebuilds them)."""
        self.note(self.nodes)
        cursors = cursor_id(self.source.agent_id, "")
        self.changed_stats.update(s for s in self.tails if s.startswith(cursors))
        self.nodes = {}
        self.tails = {s: t for s, t in self.tails.items() if not s.startswith(cursors)}
        self.below = {}
        self.marker = None
        self._last_rowid = -1
        self._events_total = None
        self._newest_node = 0
        self._named = {}
        self._unnamed = set()

    def _read(self, full: bool) -> None:
        for _attempt in range(READ_ATTEMPTS):
            before = file_mark(self.source.store)  # before connecting: the file the connection reads, or older
            db, immutable = connect(self.source.store)
            try:
                db.execute("BEGIN")  # one short read transaction: rows and events agree
                counting = self._counting(full)
                touched = self._read_rows(db, full, counting)
                self._read_events(db, touched, full, counting, FileId(before[0], before[1], 0, 0))
                db.execute("COMMIT")
            finally:
                db.close()
                self._ids = {}  # the stats ids made in this read are held by their sources and cursors now
            after = file_mark(self.source.store)
            # Kept unless the file was replaced meanwhile (the cursors would carry the wrong
            # identity), or changed under an immutable read (what was read may be torn).
            if after[:2] == before[:2] and (not immutable or after == before):
                return
            self._discard()
            full = True
        raise sqlite3.OperationalError(f"the database changed during each of {READ_ATTEMPTS} reads")

    def prepare(self, hint: set[str] | None = None) -> list[str]:
        """Nothing to read in bulk: events are read by ``seq`` in ``scan``."""
        return []

    def scan(self, changed: set[str] | None) -> AgentScan:
        """Read what is new (nothing while the database's marker is unchanged). ``changed`` None
        (the safety scan) re-reads every node and every session's newest seq when it moved."""
        path = self.source.store
        try:
            mark = marker(self.source.store)
            due = self._count_due and time.monotonic() - self._counted_at >= self.deletion_check_s
            if mark != self.marker or due:
                self._read(changed is None or self.marker is None)
                self.marker = mark
            self.health.clear_condition(path)
            self.unready_since = None
        except (sqlite3.Error, OSError) as exc:
            creating = self._being_created(exc)
            self.marker = None
            self._last_rowid = -1
            if not creating:
                self.health.set_condition(path, f"cannot read the SQLite store: {exc}")
        self.archives.scan(changed, self._named, self, self._restored)
        result = AgentScan(self.changed_keys, self.changed_stats, self._pack_idle())
        self.changed_keys, self.changed_stats = {}, set()
        self._restored = {}
        return result

    def _pack_idle(self) -> set[str]:
        """Pack the statistics of sessions no event came to for ``idle_pack_s`` (only those new
        events unpacked are looked at); their stats ids."""
        now = time.monotonic()
        if not self._written or now - self._oldest_written < self.idle_pack_s:
            return set()
        packed = set()
        for stats_id, at in list(self._written.items()):
            if now - at < self.idle_pack_s:
                continue
            del self._written[stats_id]
            tail = self.tails.get(stats_id)
            if tail is not None and not tail.packed:
                tail.pack(segment=keeps_segment(tail))
                packed.add(stats_id)
        self._oldest_written = min(self._written.values(), default=now)
        return packed

    def _being_created(self, exc: Exception) -> bool:
        """A database never read that has no tables yet, for less than ``schema_grace_s``."""
        if self.marker is not None or self.nodes or "no such table" not in str(exc):
            return False
        try:
            db, _immutable = connect(self.source.store)
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

    def _counting(self, full: bool) -> bool:
        """Whether this read counts every node and event (a full read, or due), else a later scan
        does when due (the scan reads then even if nothing more was written)."""
        now = time.monotonic()
        if not full and now - self._counted_at < self.deletion_check_s:
            self._count_due = True
            return False
        self._counted_at, self._count_due = now, False
        self.counts += 1
        return True

    def _read_rows(self, db: sqlite3.Connection, full: bool, counting: bool) -> set[str]:
        """Read the nodes that moved; returns the session ids whose node changed.

        Between safety scans only nodes with ``updated_at`` at or past the newest seen are read
        (OpenClaw bumps it on every write of a node); a different node count (one deleted; counted
        when ``counting``) or a safety scan reads them all. Only a full read walks every node;
        otherwise the work follows the nodes read (a change to one of 50,000 sessions touches one
        entry)."""
        touched: set[str] = set()
        count: int | None = None
        if not full and self.nodes and counting:
            (count,) = db.execute("SELECT count(*) FROM session_nodes").fetchone()
            full = count != len(self.nodes)
        full = full or not self.nodes
        if full:
            found_nodes = db.execute(_NODES)
        else:
            found_nodes = db.execute(_NODES + " WHERE updated_at >= ?", (self._newest_node,))
        # Applied once every node is read: a read that fails midway leaves the nodes as they were.
        moved: dict[str, Node] = {}
        kept: set[str] = set()
        agent = self.source.agent_id
        bad: list[tuple[str, str]] = []
        for raw_key, raw_sid, updated_at in found_nodes:
            key = raw_key.decode("utf-8", "replace")
            sid = raw_sid.decode("utf-8", "replace")
            if isinstance(updated_at, int) and updated_at > self._newest_node:
                self._newest_node = updated_at
            old = self.nodes.get(key)
            if old is not None and old.updated_at == updated_at and old.stats_id == cursor_id(agent, sid):
                kept.add(key)
                continue
            found = db.execute(_ENTRY, (raw_key,)).fetchone()
            try:
                row: IndexRow | None = parse_index_row(found[0] if found else b"")
            except BadRecord as rejected:
                bad.append((rejected.kind, key))
                row = None
            if row is not None:
                if row.sessionId == sid:
                    sid = row.sessionId  # the node's id is its row's (one string a session, not two)
                if row.updatedAt == updated_at:
                    updated_at = row.updatedAt  # the row's number (OpenClaw writes the same): 32 bytes less
            moved[key] = Node(key, agent, row, self._stats_id(sid), updated_at=updated_at)
            touched.add(sid)
        if count is not None and not full and count != len(self.nodes) + sum(1 for k in moved if k not in self.nodes):
            # A node deleted while another came (a finished sub-agent's node removed as a new one
            # is spawned): the counts matched before the new one was read. Read them all.
            return self._read_rows(db, True, False)
        for kind, key in bad:
            self.health.count(self.source.store, kind, key)
        self._apply_nodes(moved, [k for k in self.nodes if k not in kept and k not in moved] if full else [])
        return touched

    def _apply_nodes(self, moved: dict[str, Node], gone: list[str]) -> None:
        """The nodes read (``gone``: those a full read no longer found) into nodes and sources."""
        self.note(moved)
        self.note(gone)  # only a full read can find a node gone
        for key in gone:
            self._unname(self._sid(self.nodes.pop(key)))
        for key, node in moved.items():
            old = self.nodes.get(key)
            if old is not None:
                self._unname(self._sid(old))
            sid = self._sid(node)
            self._named[sid] = self._named.get(sid, 0) + 1
            self._unnamed.discard(sid)
            self.nodes[key] = node

    def _sid(self, node: Node) -> str:
        """The node's session id (its row's string when they are equal: no copy kept)."""
        assert node.stats_id is not None
        sid = node.stats_id[len(cursor_id(self.source.agent_id, "")) :]
        row = node.row
        return row.sessionId if row is not None and row.sessionId == sid else sid

    def _unname(self, sid: str) -> None:
        left = self._named[sid] - 1
        if left:
            self._named[sid] = left
        else:
            del self._named[sid]
            self._unnamed.add(sid)
