"""``StatsStore``: the one writer of statistics. ``scan()`` brings them up to date and returns a
new immutable :class:`Snapshot` (the same object when nothing changed).

Per agent it polls the index (``sessions.json`` or SQLite ``session_nodes``), tails every
transcript that belongs to it (live, topic, ``.reset``/``.deleted`` archives, orphans), and
joins them into rows. Work is proportional to what changed: unchanged files cost one
``stat``, unchanged rows are reused, and a transcript renamed into an archive keeps its state
(same inode), so a reset re-reads nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from clawstats.core.catalog import Catalog
from clawstats.core.enrich import ForecastMemo, enrich
from clawstats.core.health import Health, HealthLog
from clawstats.core.records import IndexRow
from clawstats.core.session import SessionRow, build_row
from clawstats.core.snapshot import Snapshot, TranscriptView
from clawstats.core.totals import compute_totals
from clawstats.core.transcript import TranscriptStats
from clawstats.core.usage import Pricer
from clawstats.watch.cache import IndexCache
from clawstats.watch.index import IndexFile
from clawstats.watch.layout import AgentSource, list_regular
from clawstats.watch.sessionkeys import owner_from_trajectory
from clawstats.watch.source import Source
from clawstats.watch.sqlite_store import SqliteAgent
from clawstats.watch.tail import DEFAULT_MAX_LINE_BYTES, Tail, TailImage, adopt, export, read_whole

#: A directory listing is trusted for reuse only once its mtime is this old (see _plan_files).
RACY_S = 2.0
#: Below this many bytes of cold reads, forking workers costs more than it saves.
PARALLEL_MIN_BYTES = 32 << 20
#: OpenClaw writes a new session's row moments before its transcript: normal, not a fault. A row
#: still without its transcript after this long is counted (and logged) as rowWithoutTranscript.
ROW_GRACE_S = 5.0
#: Usage-counted archives, as OpenClaw names them (artifacts.ts): ``<sid>.jsonl.<reset|deleted>.<ISO
#: stamp with - for :>Z`` with an optional ``.<32 hex>`` suffix and ``.zst``; older writers used an
#: epoch-ms stamp (ccusage and tokscale read those too) and ``.gz``.
ARCHIVE_RE = re.compile(
    r"^(?P<sid>.+?)\.jsonl\.(?P<why>reset|deleted)"
    r"\.(?:\d{4}-\d{2}-\d{2}T[0-9:\-]+(?:\.\d{1,3})?Z(?:\.[0-9a-f]{32})?|\d{10,16})"
    r"(?:\.(?:gz|zst))?$"
)


def is_live_transcript(name: str) -> bool:
    return (
        name.endswith(".jsonl")
        and not name.endswith(".trajectory.jsonl")
        and ".checkpoint." not in name
        and not name.startswith(".")
    )


@dataclass
class _AgentFiles:
    source: AgentSource
    index: IndexFile
    owners: dict[str, str] = field(default_factory=dict)  # sessionId -> key that had it
    last_ids: dict[str, str] = field(default_factory=dict)  # key -> sessionId at the last scan
    plan: tuple[tuple[int, int], list[Source], set[str]] | None = None  # (index rev, dir mtime), plan
    waiting: bool = False  # a row waits for its transcript: rebuild the plan every scan until settled


class StatsStore:
    """Owns every ``Tail``/``TranscriptStats``; call :meth:`scan` from one task only."""

    def __init__(
        self,
        state_dir: Path,
        agents: list[AgentSource],
        catalog: Catalog,
        cache: IndexCache | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        workers: int = 1,
    ) -> None:
        self.state_dir = state_dir
        self.catalog = catalog
        self.cache = cache
        self.max_line_bytes = max_line_bytes
        self.workers = workers  # > 1: cold reads of many files fan out to worker processes
        self.health = HealthLog()
        self.tails: dict[str, Tail] = {}
        self.files: dict[str, _AgentFiles] = {}
        self.sqlite: dict[str, SqliteAgent] = {}
        #: set by ``open_store`` for a server: follows agents (and the state dir) appearing later
        self.discovery: Callable[[], bool] | None = None
        for agent in agents:
            self.add_agent(agent)
        self._rows: dict[str, tuple[object, SessionRow]] = {}
        # per transcript: (revision, the stats object, its view); a re-read makes a new stats object
        # whose revision may repeat an old one, so both must match to reuse the view
        self._views: dict[str, tuple[int, TranscriptStats, TranscriptView]] = {}
        self._forecasts: ForecastMemo = {}  # per row key: the compaction forecast of an unchanged view
        self._noted: set[tuple[str, str]] = set()
        self.row_grace_s = ROW_GRACE_S
        self._missing_since: dict[str, float] = {}  # key -> when its row was first seen without transcript
        self._archive_owners: dict[str, str] = {}  # trajectory path -> key (SQLite agents' archives)
        self._irregular: dict[str, set[str]] = {}  # sessions dir -> non-regular paths named like transcripts
        self.revision = 0
        self.snapshot: Snapshot | None = None
        # The first scan takes cached tails from one bulk read; later ones look up one by one.
        self._cached: dict[str, Tail] | None = cache.restore_all() if cache is not None else None

    def add_agent(self, agent: AgentSource) -> None:
        """Follow an agent (at start-up, or found later: a new agent, or its file store now SQLite)."""
        self.health.layouts[agent.agent_id] = agent.layout
        old = self.files.pop(agent.agent_id, None)
        if old is not None:  # upgraded to SQLite: its file tails go (the database has every session)
            prefix = old.source.sessions_dir + os.sep
            for path in [p for p in self.tails if p.startswith(prefix)]:
                del self.tails[path]
        if agent.layout == "sqlite":
            self.sqlite[agent.agent_id] = SqliteAgent(
                agent, self.health, self.cache, self.catalog.pricer(agent.agent_id)
            )
            return
        files = _AgentFiles(agent, IndexFile(agent.store))
        if self.cache is not None:
            files.owners.update(self.cache.owners(agent.agent_id))
        self.files[agent.agent_id] = files

    def set_catalog(self, catalog: Catalog) -> None:
        """A new catalog (config or an agent's ``models.json`` changed): every row is rebuilt, and
        when prices changed every transcript is read again (calls without a recorded cost are
        priced as they are read). The caller runs a full scan next."""
        repriced = catalog.identity() != self.catalog.identity()
        self.catalog = catalog
        self._rows = {}
        if not repriced:
            return
        for files in self.files.values():
            prefix = files.source.sessions_dir + os.sep
            for path in [p for p in self.tails if p.startswith(prefix)]:
                tail = self.tails[path]
                tail.use_price(catalog.pricer(files.source.agent_id))
                tail.restart()
                tail.file_id = None  # the next poll reads it again from the start
        for agent_id, reader in list(self.sqlite.items()):
            # cursors from the index cache were priced with the old catalog: not reused
            self.sqlite[agent_id] = SqliteAgent(reader.source, self.health, None, catalog.pricer(agent_id))

    # -- scanning --------------------------------------------------------------------------

    def scan(self, changed: set[str] | None = None) -> Snapshot:
        """Bring statistics up to date. ``changed`` (paths from file-system events) limits the
        transcripts stat'ed to those; None stats every one (the periodic safety net)."""
        started = time.perf_counter()
        sources: list[Source] = []
        stats_of: dict[str, tuple[int, TranscriptStats]] = {}
        planned = [(files, self._plan_files(files)) for files in self.files.values()]
        # New files of every agent adopted first, so one pool of workers reads all cold ones.
        fresh = [self._adopt_new(files.source, wanted) for files, (_s, wanted) in planned]
        self._read_cold_in_parallel([p for paths in fresh for p in paths if self.tails[p].file_id is None])
        for files, (agent_sources, wanted) in planned:
            self._poll_tails(files.source.sessions_dir, wanted, stats_of, changed)
            sources.extend(agent_sources)
        for sqlite_agent in self.sqlite.values():
            sources.extend(sqlite_agent.scan(stats_of))
            sources.extend(self._sqlite_archives(sqlite_agent, stats_of, changed))
        self._cached = None
        self.health.last_scan_ms = time.time() * 1000.0
        self.health.last_scan_s = time.perf_counter() - started
        snapshot = self._publish(sources, stats_of)
        if self.cache is not None:
            self.cache.save(self.all_tails(), self.files_owners())
        return snapshot

    def all_tails(self) -> dict[str, Tail]:
        """File tails and SQLite cursors: what the persisted index keeps."""
        tails = dict(self.tails)
        for sqlite_agent in self.sqlite.values():
            tails.update({tail.path: tail for tail in sqlite_agent.tails.values()})
        return tails

    def files_owners(self) -> dict[str, dict[str, str]]:
        return {agent_id: dict(files.owners) for agent_id, files in self.files.items()}

    def _plan_files(self, agent_files: _AgentFiles) -> tuple[list[Source], set[str]]:
        """An agent's rows and the transcript paths they need (file layout).

        Reused while neither the index nor the directory changed: the directory's mtime moves
        on every create, rename and delete in it. A plan built less than ``RACY_S`` after that
        mtime is not trusted (a file created in the same timestamp tick would be missed).
        """
        source, health = agent_files.source, self.health
        try:
            agent_files.index.poll(health)
        except OSError as exc:
            health.set_condition(source.store, f"cannot read: {exc.strerror or exc}")
        try:
            dir_mtime_ns = os.stat(source.sessions_dir).st_mtime_ns
        except OSError:
            dir_mtime_ns = -1
        key = (agent_files.index.revision, dir_mtime_ns)
        if agent_files.plan is not None and agent_files.plan[0] == key:
            return agent_files.plan[1], agent_files.plan[2]
        sources, wanted = self._build_plan(agent_files)
        if dir_mtime_ns >= 0 and time.time_ns() - dir_mtime_ns > RACY_S * 1e9 and not agent_files.waiting:
            agent_files.plan = (key, sources, wanted)
        else:
            agent_files.plan = None
        return sources, wanted

    def _build_plan(self, agent_files: _AgentFiles) -> tuple[list[Source], set[str]]:
        source = agent_files.source
        sessions_dir = source.sessions_dir
        names = self._list(sessions_dir)
        rows = agent_files.index.rows
        self._learn_owners(agent_files, rows)
        present = set(names)
        live, archives = _classify(sessions_dir, names)
        sources: list[Source] = []
        claimed: set[str] = set()
        agent_files.waiting = False
        for key, row in rows.items():
            path = self._locate(row, sessions_dir, present)
            if path is None:
                first = self._missing_since.setdefault(key, time.monotonic())
                if time.monotonic() - first >= self.row_grace_s:
                    self._note(key, "rowWithoutTranscript", source.store)
                else:
                    agent_files.waiting = True  # look again next scan, even if nothing else changed
            else:
                self._missing_since.pop(key, None)
                claimed.add(path)
            sources.append(Source(key, source.agent_id, row, path))
        for name, path in live.items():
            if path not in claimed:
                sid = name[: -len(".jsonl")]
                self._note(path, "transcriptWithoutRow", path)
                # e.g. an earlier run of a cron job: its trace names the key it ran under
                owner = self._owner(agent_files, sid)
                sources.append(Source(f"agent:{source.agent_id}:{sid}", source.agent_id, None, path, False, owner))
        for sid, path in archives:
            owner = self._owner(agent_files, sid)
            sources.append(Source(f"agent:{source.agent_id}:{sid}", source.agent_id, None, path, True, owner))
        return sources, {s.stats_id for s in sources if s.stats_id is not None}

    @staticmethod
    def _owner(agent_files: _AgentFiles, sid: str) -> str | None:
        """The key a transcript no row points at belonged to: learnt live, else from its trace."""
        owner = agent_files.owners.get(sid)
        if owner is None:
            owner = owner_from_trajectory(os.path.join(agent_files.source.sessions_dir, f"{sid}.trajectory.jsonl"))
            if owner is not None:
                agent_files.owners[sid] = owner
        return owner

    def _list(self, sessions_dir: str) -> list[str]:
        health, state_dir = self.health, str(self.state_dir)
        try:
            names, others = list_regular(sessions_dir)
            self._irregular_files(sessions_dir, others)
            health.clear_condition(sessions_dir)
        except FileNotFoundError:
            names = []
            health.clear_condition(sessions_dir)
        except OSError as exc:
            names = []
            health.set_condition(sessions_dir, f"cannot list: {exc.strerror or exc}")
        if os.path.isdir(state_dir):
            health.clear_condition(state_dir)
        else:
            health.set_condition(state_dir, "state dir is missing")
        return names

    def _irregular_files(self, sessions_dir: str, others: list[str]) -> None:
        """A FIFO, directory or symlink loop named like a transcript: never opened (a FIFO would
        block the scanner), counted, and a condition (degraded) while it is there."""
        found = {os.path.join(sessions_dir, n) for n in others if is_live_transcript(n) or ARCHIVE_RE.match(n)}
        for path in self._irregular.get(sessions_dir, set()) - found:
            self.health.clear_condition(path)
        for path in found:
            self._note(path, "notRegularFile", sessions_dir)
            self.health.set_condition(path, "cannot read: not a regular file (FIFO, directory or symlink loop)")
        self._irregular[sessions_dir] = found

    def _learn_owners(self, agent_files: _AgentFiles, rows: dict[str, IndexRow]) -> None:
        """A key whose sessionId changed owned the old one (its reset archive)."""
        previous = agent_files.last_ids
        current = {key: row.sessionId for key, row in rows.items() if row.sessionId}
        for key, old in previous.items():
            new = current.get(key)
            if new is not None and new != old:
                agent_files.owners[old] = key
        for key, sid in current.items():
            agent_files.owners.setdefault(sid, key)
        agent_files.last_ids = current

    @staticmethod
    def _locate(row: IndexRow, sessions_dir: str, present: set[str]) -> str | None:
        """§2.3: the row's sessionFile if it exists, else its name or ``<sessionId>.jsonl`` here."""
        candidates: list[str] = []
        if row.sessionFile:
            if os.path.isabs(row.sessionFile):
                if os.path.dirname(row.sessionFile) == sessions_dir:
                    candidates.append(os.path.basename(row.sessionFile))
                elif os.path.isfile(row.sessionFile):
                    return row.sessionFile
                else:
                    candidates.append(os.path.basename(row.sessionFile))
            else:
                candidates.append(row.sessionFile)
        if row.sessionId:
            candidates.append(f"{row.sessionId}.jsonl")
        for name in candidates:
            if os.sep not in name and name in present:
                return os.path.join(sessions_dir, name)
            if os.sep in name and os.path.isfile(os.path.join(sessions_dir, name)):
                return os.path.join(sessions_dir, name)
        return None

    def _poll_tails(
        self,
        sessions_dir: str,
        wanted: set[str],
        stats_of: dict[str, tuple[int, TranscriptStats]],
        changed: set[str] | None,
    ) -> None:
        prefix = sessions_dir + os.sep
        for path in sorted(wanted):
            tail = self.tails[path]
            if changed is not None and path not in changed and tail.file_id is not None:
                stats_of[path] = (tail.revision, tail.stats)
                continue
            try:
                tail.poll(self.health, self.max_line_bytes)
                self.health.clear_condition(path)
            except FileNotFoundError:
                continue  # gone between listing and reading: next scan settles it
            except OSError as exc:
                self.health.set_condition(path, f"cannot read: {exc.strerror or exc}")
            stats_of[path] = (tail.revision, tail.stats)
        for path in [p for p in self.tails if p.startswith(prefix) and p not in wanted]:
            self.tails.pop(path, None)
            self.health.clear_condition(path)

    def _sqlite_archives(
        self, agent: SqliteAgent, stats_of: dict[str, tuple[int, TranscriptStats]], changed: set[str] | None
    ) -> list[Source]:
        """Reset/deleted transcript files beside a SQLite store, as OpenClaw's usage report counts
        them: a migration imports the live sessions into the database (their files go to
        ``session-sqlite-import-archive/``, never read: they would count twice) and leaves the
        archives of earlier sessions in ``sessions/``, their only record."""
        source = agent.source
        try:
            names = os.listdir(source.sessions_dir)
        except OSError:
            names = []
        in_database = {sid for _updated, _row, sid in agent.rows.values()}
        _live, archives = _classify(source.sessions_dir, names)
        found: list[Source] = []
        for sid, path in archives:
            if sid in in_database:
                continue
            trajectory = os.path.join(source.sessions_dir, f"{sid}.trajectory.jsonl")
            owner = self._archive_owners.get(trajectory)
            if owner is None:  # kept once found: an archive's owner never changes
                owner = owner_from_trajectory(trajectory)
                if owner is not None:
                    self._archive_owners[trajectory] = owner
            found.append(Source(f"agent:{source.agent_id}:{sid}", source.agent_id, None, path, True, owner))
        wanted = {src.stats_id for src in found if src.stats_id is not None}
        self._adopt_new(source, wanted)
        self._poll_tails(source.sessions_dir, wanted, stats_of, changed)
        return found

    def _adopt_new(self, source: AgentSource, wanted: set[str]) -> list[str]:
        """Tails for paths seen for the first time (renamed, cached or new); returns those paths."""
        prefix = source.sessions_dir + os.sep
        price = self.catalog.pricer(source.agent_id)
        vanished = {p: t for p, t in self.tails.items() if p.startswith(prefix) and p not in wanted}
        by_inode = {(t.file_id.dev, t.file_id.ino): t for t in vanished.values() if t.file_id is not None}
        fresh = [p for p in sorted(wanted) if p not in self.tails]
        for path in fresh:
            self._adopt(path, by_inode, vanished).use_price(price)
        return fresh

    def _read_cold_in_parallel(self, paths: list[str]) -> None:
        """Whole reads of never-seen files in worker processes (both cores on a cold start)."""
        if self.workers < 2 or len(paths) < 2:
            return
        sizes = {}
        for path in paths:
            try:
                sizes[path] = os.stat(path).st_size
            except OSError:
                continue
        if sum(sizes.values()) < PARALLEL_MIN_BYTES:
            return
        order = sorted(sizes, key=sizes.__getitem__, reverse=True)  # big files first: even finish
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
            prices = [self.tails[path].stats.price for path in order]
            for result, price in zip(
                pool.map(_cold_read, order, [self.max_line_bytes] * len(order), prices), prices, strict=True
            ):
                if result is None:
                    continue
                image, counts = result
                tail = adopt(image, price)
                self.tails[tail.path] = tail
                for kind, n in counts.items():
                    self.health.count(tail.path, kind, "(read by a worker)", n)

    def _adopt(self, path: str, by_inode: dict[tuple[int, int], Tail], vanished: dict[str, Tail]) -> Tail:
        """A new path: a renamed file we already read (reset archive), a cached one, or new."""
        tail: Tail | None = None
        try:
            st = os.stat(path)
            moved = by_inode.get((st.st_dev, st.st_ino))
            if moved is not None and not path.endswith((".gz", ".zst")):
                vanished.pop(moved.path, None)
                self.tails.pop(moved.path, None)
                moved.path = path
                tail = moved
        except OSError:
            pass
        if tail is None and self._cached is not None:
            tail = self._cached.pop(path, None)
        elif tail is None and self.cache is not None:
            tail = self.cache.restore(path)
        if tail is None:
            tail = Tail(path)
        self.tails[path] = tail
        return tail

    def _note(self, subject: str, kind: str, path: str) -> None:
        if (subject, kind) not in self._noted:
            self._noted.add((subject, kind))
            self.health.count(path, kind, subject)

    # -- publishing ------------------------------------------------------------------------

    def _publish(self, sources: list[Source], stats_of: dict[str, tuple[int, TranscriptStats]]) -> Snapshot:
        earlier: dict[str, float] = {}
        for src in sources:
            if src.archived and src.archived_from and src.stats_id in stats_of:
                cost = stats_of[src.stats_id][1]
                earlier[src.archived_from] = earlier.get(src.archived_from, 0.0) + cost.cost
        bases = _agent_base_prompts(sources, stats_of)
        rows: list[SessionRow] = []
        views: dict[str, TranscriptView] = {}
        transcripts: dict[str, tuple[str, TranscriptView]] = {}
        new_rows: dict[str, tuple[object, SessionRow]] = {}
        new_views: dict[str, tuple[int, TranscriptStats, TranscriptView]] = {}
        for src in sources:
            revision, stats = stats_of.get(src.stats_id or "", (-1, None))
            if src.row is None and not src.archived and (stats is None or stats.entries == 0):
                continue  # a transcript without a row and without one valid record (binary) is no session
            signature = (src, revision, earlier.get(src.key, 0.0), bases.get(src.agent_id))
            cached = self._rows.get(src.key)
            if cached is not None and cached[0] == signature:
                row = cached[1]
            else:
                row = build_row(
                    src.key,
                    src.agent_id,
                    src.row,
                    stats,
                    self.catalog,
                    archived=src.archived,
                    archived_from=src.archived_from,
                    earlier_cost=earlier.get(src.key, 0.0),
                    base_prompt=bases.get(src.agent_id),
                )
            new_rows[src.key] = (signature, row)
            rows.append(row)
            if stats is not None and src.stats_id is not None:
                old_view = self._views.get(src.stats_id)
                if old_view is not None and old_view[0] == revision and old_view[1] is stats:
                    view = old_view[2]
                else:
                    view = TranscriptView.of(src.agent_id, stats)
                new_views[src.stats_id] = (revision, stats, view)
                views[src.key] = view
                transcripts[src.stats_id] = (src.agent_id, view)
        changed = new_rows.keys() != self._rows.keys() or any(self._rows[k][1] is not v[1] for k, v in new_rows.items())
        self._rows, self._views = new_rows, new_views
        health = self.health.freeze()
        if self.snapshot is not None and not changed and _same_health(health, self.snapshot.health):
            # Nothing a reader sees changed: same revision (so ETags hold), fresh scan times.
            self.snapshot = replace(self.snapshot, health=health)
            return self.snapshot
        self.revision += 1
        rows = enrich(rows, views, self.catalog.compaction, self._forecasts)  # lineage, tree cost, forecast
        rows.sort(key=lambda r: (-(r.updated_at_ms or 0.0), r.key))
        self.snapshot = Snapshot(
            revision=self.revision,
            generated_ms=time.time() * 1000.0,
            state_dir=str(self.state_dir),
            rows=tuple(rows),
            by_key={row.key: row for row in rows},
            views=views,
            transcripts=tuple(transcripts.values()),
            totals=compute_totals(transcripts.values(), len(rows), sum(1 for row in rows if row.total_cost is None)),
            health=health,
            catalog=self.catalog,
        )
        return self.snapshot


def _agent_base_prompts(sources: list[Source], stats_of: dict[str, tuple[int, TranscriptStats]]) -> dict[str, int]:
    """Per agent, the base prompt (system prompt + tools + bootstrap) of its latest transcript
    that has one: the estimate for a session of that agent that has not had a call yet."""
    latest: dict[str, tuple[float, int]] = {}
    for src in sources:
        stats = stats_of.get(src.stats_id or "", (0, None))[1]
        if stats is None or stats.base_prompt is None:
            continue
        at = stats.last_call_ms or 0.0
        if src.agent_id not in latest or at > latest[src.agent_id][0]:
            latest[src.agent_id] = (at, stats.base_prompt)
    return {agent: base for agent, (_at, base) in latest.items()}


def _cold_read(path: str, max_line_bytes: int, price: Pricer | None) -> tuple[TailImage, dict[str, int]] | None:
    try:
        tail, health = read_whole(path, max_line_bytes, price)
    except OSError:
        return None  # vanished or unreadable: the ordinary poll after this reports it
    return export(tail), dict(health.counters)


def _classify(sessions_dir: str, names: list[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """({live transcript name: path}, [(archived sessionId, path)])."""
    live: dict[str, str] = {}
    archives: list[tuple[str, str]] = []
    for name in sorted(names):
        match = ARCHIVE_RE.match(name)
        if match:
            archives.append((match.group("sid"), os.path.join(sessions_dir, name)))
        elif is_live_transcript(name):
            live[name] = os.path.join(sessions_dir, name)
    return live, archives


def _same_health(a: Health, b: Health) -> bool:
    return (a.counters, a.conditions, a.layouts) == (b.counters, b.conditions, b.layouts)
