"""``FileAgent``: one agent of the file layout (``sessions.json`` + JSONL transcripts).

It owns the agent's plan (which row reads which transcript: live, topic, ``.reset``/``.deleted``
archives, orphans) and the :class:`Tail` of every transcript in it. Same shape as
:class:`~clawstats.watch.sqlite_store.SqliteAgent`: ``prepare()`` plans and names the files
never read (the store reads those in one batch over all agents), ``scan()`` polls and reports
what changed, ``sources`` and ``tails`` are what the store joins.

Work follows what changed: the plan is rebuilt only when ``sessions.json`` or the directory's
transcript names change (a rewrite of ``sessions.json`` re-applies only its changed rows), and a
poll given the paths named by file-system events stats only those.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from clawstats.core.health import HealthLog
from clawstats.core.records import IndexRow
from clawstats.core.usage import Pricer
from clawstats.watch.cache import IndexCache
from clawstats.watch.index import IndexFile
from clawstats.watch.layout import AgentSource
from clawstats.watch.listing import Listing
from clawstats.watch.locate import classify_paths, elsewhere, locate
from clawstats.watch.sessionkeys import owner_from_trajectory
from clawstats.watch.source import AgentScan, Before, PlanSources, Source, note_before
from clawstats.watch.tail import DEFAULT_MAX_LINE_BYTES, Tail

#: OpenClaw writes a new session's row moments before its transcript: normal, not a fault. A row
#: still without its transcript after this long is counted (and logged) as rowWithoutTranscript.
ROW_GRACE_S = 5.0


class FileAgent:
    """Reader state of one file-layout agent; called by the store's single writer."""

    def __init__(
        self,
        source: AgentSource,
        health: HealthLog,
        cache: IndexCache | None = None,
        restored: dict[str, Tail] | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        price: Pricer | None = None,
    ) -> None:
        self.source = source
        self.price = price  # prices calls without a recorded cost, one call at a time
        self.health = health
        self.cache = cache
        self.max_line_bytes = max_line_bytes
        self.sessions_dir = source.sessions_dir
        self.index = IndexFile(source.store)
        self.sources = PlanSources({}, {}, source.agent_id, os.path.join(self.sessions_dir, ""))  # row key -> Source
        self.tails: dict[str, Tail] = {}  # transcript path -> Tail
        # sessionId -> the key it belonged to, learnt: ids a key moved on from (a reset), ids of
        # rows gone from sessions.json, transcripts' traces, the index's; the ids of the rows now
        # are read from them (see ``owners``), not kept a second time (~40 bytes a session)
        self._learnt: dict[str, str] = cache.owners(source.agent_id) if cache is not None else {}
        self._by_id: dict[str, str] | None = None  # the rows' ids -> key, within one plan, once asked
        self._restored = restored if restored is not None else {}
        self.listing = Listing(self.sessions_dir, health, self._note)
        self._index_revision = -1
        self._noted: set[tuple[str, str]] = set()
        self.row_grace_s = ROW_GRACE_S
        # What a plan found by a stat rather than in the listing (a sessionFile outside the
        # sessions dir, or in a folder under it): whether each such folder existed, and the keys
        # whose transcript a stat of one file decided. A row-only plan looks at these again.
        self._outside: dict[str, bool] = {}
        self._probed: set[str] = set()
        self._missing_since: dict[str, float] = {}  # key -> when its row was first seen without transcript
        self._waiting = False  # a row waits for its transcript: plan again every scan until settled
        self._changed_keys: Before = {}  # key -> its source at the last scan (the store's joins take it out)
        self._changed_stats: set[str] = set()
        self._read_now: set[str] = set()  # read whole by a worker in this scan: no poll needed
        self._unread: set[str] = set()  # tails never read yet (polled on every scan until they are)
        # New transcripts named by the last plan, in plan order, and the tail a worker read for
        # each: their Tail is made only when no worker read them (see _settle), not made empty
        # and dropped for each of 50,000 transcripts on a cold start.
        self._cold: dict[str, Tail | None] = {}
        self.rows_planned = 0  # lifetime count of rows located by a plan (a test pins a rewrite's work)

    # -- planning ----------------------------------------------------------------------------

    def prepare(self, hint: set[str] | None = None) -> list[str]:
        """Bring the plan up to date; returns the transcripts never read (for a batch read).
        ``hint``: the paths file-system events named (and the safety sweep's slice), or None."""
        self._settle()
        source, health = self.source, self.health
        try:
            self.index.poll(health)
        except OSError as exc:
            health.set_condition(source.store, f"cannot read: {exc.strerror or exc}")
        names_changed = self.listing.refresh(hint)
        if names_changed or self.index.revision != self._index_revision or self._waiting:
            one_reload = self.index.revision == self._index_revision + 1
            self._index_revision = self.index.revision
            if names_changed or self._waiting or not one_reload or not self._replan_rows(self.index.changed):
                self._replan()
            # planned: not kept (after a cold load, every key: 2 MiB at 50,000 sessions)
            self.index.changed = set()
        self._unread = {p for p in self._unread if p in self.tails or p in self._cold}
        return sorted(self._unread)

    def listed(self) -> list[str]:
        """Before the first plan of an agent read from nothing (no tail, none restored from the
        index): every transcript its directory lists, each of which that plan names a row for
        and reads whole, so the store can start reading them before it plans; [] otherwise."""
        if self.listing.paths is not None or self.tails or self._cold or self._restored:
            return []
        self.listing.refresh()
        return sorted(self.listing.paths or ())

    def _settle(self) -> None:
        """Every transcript of the plan has its Tail: the one a worker read, else a new one."""
        if self._cold:
            for path, tail in self._cold.items():
                if tail is None:
                    tail = Tail(path, self.price)
                else:
                    tail.path = path  # the plan's string (often the row's sessionFile), not the worker's copy
                self.tails[path] = tail
            self._cold = {}

    def _replan(self) -> None:
        """Rebuild the sources; record the keys whose source changed and adopt new transcripts."""
        sources = self._build_plan()
        old = self.sources
        note_before(self._changed_keys, old, sources.changed_from(old))
        self.sources = sources
        wanted = sources.paths()
        vanished = {p: t for p, t in self.tails.items() if p not in wanted}
        if not vanished and wanted <= self.tails.keys():
            return
        by_inode = {(t.file_id.dev, t.file_id.ino): t for t in vanished.values() if t.file_id is not None}
        for path in sorted(wanted - self.tails.keys()):
            self._adopt(path, by_inode, vanished)
        for path in vanished:
            del self.tails[path]
            if path not in self.listing.irregular:  # its condition is the listing's, set this scan
                self.health.clear_condition(path)
            self._changed_stats.add(path)

    def _replan_rows(self, keys: set[str]) -> bool:
        """The plan after a rewrite of ``sessions.json`` in which only ``keys`` changed, when each
        is a row that still reads the transcript it read under the same session id (OpenClaw's
        rewrite on every turn: token counts, timestamps, the model). What the full plan would give
        for them, without locating 50,000 rows again; False (nothing done) for anything else: a
        row added or removed, a new transcript or session id (a reset), so the full plan decides
        claims, orphans and archive owners as always. The rows the listing does not locate
        (a sessionFile elsewhere) are located again too: their file may have come or gone."""
        rows, sources, present = self.index.rows, self.sources, self.listing.paths or {}
        outside, probed_keys = self._outside, self._probed
        if not keys or len(keys) + len(probed_keys) + len(outside) > max(len(rows) // 8, 64):
            return False  # nothing, or so much that the full plan costs about the same
        agent_id, sessions_dir = self.source.agent_id, self.sessions_dir
        if any(elsewhere(folder, sessions_dir) != found for folder, found in outside.items()):
            return False  # a folder a sessionFile names came or went
        # (the plan's rows are those of its reload, never changed: the new plan's the new ones)
        planned_now = PlanSources(rows, sources.odd, agent_id, sources.prefix)
        dirs: dict[str, bool] = {}
        probed: list[str] = []
        planned: list[tuple[Source, bool]] = []
        for key in keys:
            row, old = rows.get(key), sources.get(key)
            if row is None or old is None or old.row is None or old.stats_id is None:
                return False
            if row.sessionId != old.row.sessionId or locate(row, sessions_dir, present, dirs, probed) != old.stats_id:
                return False
            planned.append((Source(key, agent_id, row, old.stats_id), bool(probed)))
            probed.clear()
        for key in probed_keys - keys:  # unchanged rows whose file a stat found (or did not)
            row, old = rows.get(key), sources.get(key)
            if row is None or old is None or old.row is not row:
                return False
            if locate(row, sessions_dir, present, dirs) != old.stats_id:
                return False
        outside.update(dirs)
        self.rows_planned += len(planned)
        for src, was_probed in planned:
            if was_probed:
                probed_keys.add(src.key)
            else:
                probed_keys.discard(src.key)
            if sources[src.key] != src:
                note_before(self._changed_keys, sources, (src.key,))
            planned_now.put(src)  # (``odd`` is both plans': the old one is not read again)
        self.sources = planned_now
        return True

    def _build_plan(self) -> PlanSources:
        source = self.source
        sessions_dir = source.sessions_dir
        present = self.listing.paths or {}
        rows = self.index.rows
        self.rows_planned += len(rows)
        self._learn_owners(rows)
        live, archives = classify_paths(sessions_dir, present)
        sources = PlanSources(rows, {}, source.agent_id, self.sources.prefix)
        claimed: set[str] = set()
        self._waiting = False
        now = time.monotonic()
        dirs: dict[str, bool] = {}
        probed: list[str] = []
        self._probed = set()
        for key, row in rows.items():
            path = locate(row, sessions_dir, present, dirs, probed)
            if probed:
                self._probed.add(key)
                probed.clear()
            if path is None:
                first = self._missing_since.setdefault(key, now)
                if now - first >= self.row_grace_s:
                    self._note(key, "rowWithoutTranscript", source.store)
                else:
                    self._waiting = True  # look again next scan, even if nothing else changed
            else:
                self._missing_since.pop(key, None)
                claimed.add(path)
            sources.put(Source(key, source.agent_id, row, path))
        self._outside = dirs
        if self._missing_since:  # a row gone from sessions.json is not waited for any more
            self._missing_since = {k: at for k, at in self._missing_since.items() if k in rows}
        for name, path in live.items():
            if path not in claimed:
                sid = name[: -len(".jsonl")]
                key = f"agent:{source.agent_id}:{sid}"
                # e.g. an earlier run of a cron job: its trace names the key it ran under. OpenClaw
                # leaves those behind on purpose, so only a transcript nobody owns is a condition.
                owner = self._owner(sid)
                if owner is None:
                    self._note(path, "transcriptWithoutRow", path)
                sources.put(Source(key, source.agent_id, None, path, False, owner))
        for sid, path in archives:
            key = f"agent:{source.agent_id}:{sid}"
            sources.put(Source(key, source.agent_id, None, path, True, self._owner(sid)))
        self._by_id = None  # (made for this plan's orphans and archives only)
        return sources

    @property
    def learnt(self) -> Mapping[str, str]:
        """The owners learnt of ids no row names now (a reset's old id, a key gone from the index)."""
        return self._learnt

    @property
    def owners(self) -> dict[str, str]:
        """sessionId -> the key it belongs (or belonged) to: what was learnt, and every row's own
        id (the first row naming it); made when asked, for tests and readers (the index's flush
        persists the changed rows' ids and :attr:`learnt`, ``IndexKeeper._owners``)."""
        owners = self._ids()
        owners.update(self._learnt)
        return owners

    def _ids(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        for key, row in self.index.rows.items():
            if row.sessionId:
                ids.setdefault(row.sessionId, key)
        return ids

    def _owner(self, sid: str) -> str | None:
        """The key a transcript no row points at belongs to: learnt live, the row naming its id
        now, else from its trace."""
        owner = self._learnt.get(sid)
        if owner is None:
            if self._by_id is None:
                self._by_id = self._ids()
            owner = self._by_id.get(sid)
        if owner is None:
            owner = owner_from_trajectory(os.path.join(self.sessions_dir, f"{sid}.trajectory.jsonl"))
            if owner is not None:
                self._learnt[sid] = owner
        return owner

    def _learn_owners(self, rows: dict[str, IndexRow]) -> None:
        """A key whose sessionId changed owned the old one (its reset archive), as a key gone from
        the index owned its last id. The ids at the last plan are those of its sources' rows (a
        plan of the changed rows alone keeps each row's id), not a map of every key kept for it."""
        learnt, planned = self._learnt, self.sources
        for key, row in rows.items():
            old = planned.row_of(key)
            if row.sessionId and old is not None and old.sessionId and row.sessionId != old.sessionId:
                learnt[old.sessionId] = key
        gone = [(old.sessionId, key) for key in planned if key not in rows and (old := planned.row_of(key)) is not None]
        if gone or len(learnt) > 64:
            ids = self._by_id = self._ids()
            for sid, key in gone:
                if sid and sid not in ids:  # (an id a row still names is that row's)
                    learnt.setdefault(sid, key)
            # What the index restored (every id it was told) that the rows' own ids say anyway: a
            # new dict, as deleting keeps the table of every id restored (30 bytes a session).
            self._learnt = {sid: key for sid, key in learnt.items() if ids.get(sid) != key}

    def _adopt(self, path: str, by_inode: dict[tuple[int, int], Tail], vanished: dict[str, Tail]) -> None:
        """A new path: a renamed file we already read (reset archive), a cached one, or new."""
        tail: Tail | None = None
        try:
            st = os.stat(path) if by_inode else None  # a rename needs something that vanished
            moved = by_inode.get((st.st_dev, st.st_ino)) if st is not None else None
            if moved is not None and not path.endswith((".gz", ".zst")):
                vanished.pop(moved.path, None)
                del self.tails[moved.path]
                self._changed_stats.add(moved.path)
                moved.path = path
                tail = moved
        except OSError:
            pass
        if tail is None:
            tail = self._restored.pop(path, None)
            if tail is not None:
                tail.path = path  # the listing's string (equal), not a second copy from the index
                tail.use_price(self.price)
        self._changed_stats.add(path)
        if tail is None:  # never read: a worker may read it before the scan (see _settle)
            self._cold[path] = None
            self._unread.add(path)
            return
        if not tail.identified:
            self._unread.add(path)
        self.tails[path] = tail

    def _note(self, subject: str, kind: str, path: str) -> None:
        if (subject, kind) not in self._noted:
            self._noted.add((subject, kind))
            self.health.count(path, kind, subject)

    def reprice(self, price: Pricer | None) -> None:
        """New prices: every transcript is read again from the start (calls without a recorded
        cost are priced as they are read)."""
        self._settle()
        self.price = price
        for path, tail in self.tails.items():
            tail.use_price(price)
            tail.restart()
            tail.file_id = None  # the next poll reads it again from the start
            self._unread.add(path)
            self._changed_stats.add(path)

    # -- polling -----------------------------------------------------------------------------

    def adopt_read(self, tail: Tail) -> None:
        """A tail read whole by a worker (see ``prepare``)."""
        path = tail.path
        listed = self.listing.paths.get(path) if self.listing.paths is not None else None
        if listed is not None:
            # the listing's string, the plan's too: the worker's copy goes now, while the next
            # image is decoded into its memory (at the plan's settling, 50,000 of them left holes)
            tail.path = path = listed
        if path in self._cold:
            self._cold[path] = tail
        elif path in self.tails:
            self.tails[path] = tail
        else:
            return
        self._changed_stats.add(path)
        self._read_now.add(path)
        self._unread.discard(path)

    def scan(self, changed: set[str] | None) -> AgentScan:
        """Poll the transcripts (only those in ``changed`` and never-read ones, unless None)."""
        self._settle()
        tails = self.tails
        if changed is None:
            paths: list[str] = [p for p in tails if p not in self._read_now] if self._read_now else list(tails)
        else:
            paths = [p for p in changed if p in tails]
            paths.extend(p for p in self._unread if p not in changed and p in tails)
        health = self.health
        packed: set[str] = set()
        for path in paths:
            tail = tails[path]
            before, was_packed = tail.revision, tail.packed
            try:
                tail.poll(health, self.max_line_bytes)
                health.clear_condition(path)
            except FileNotFoundError:
                self.listing.relist = True  # gone since the listing: the next plan lists again
                continue
            except OSError as exc:
                health.set_condition(path, f"cannot read: {exc.strerror or exc}")
            if tail.revision != before:
                self._changed_stats.add(path)
            elif tail.packed and not was_packed:
                packed.add(path)  # idle since it was written to: its view can be read from the dump
            if tail.identified:
                self._unread.discard(path)
        if not self._unread:
            self._unread = set()  # emptied by discards, a set keeps its table: 0.5 MB after a cold read
        result = AgentScan(self._changed_keys, self._changed_stats, packed)
        self._changed_keys, self._changed_stats = {}, set()
        self._restored = {}  # only the first plan adopts restored tails
        self._read_now = set()
        return result
