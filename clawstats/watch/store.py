"""``StatsStore``: the one writer of statistics. It joins what its agents (one
:class:`FileAgent` or :class:`SqliteAgent` per agent) report into rows and publishes an
immutable :class:`Snapshot` (the same object when nothing changed). It owns the persisted
index's lifecycle (:meth:`flush`, :meth:`close`).

Work follows what changed: each agent reports the row keys whose source changed and the
transcripts whose statistics changed; only the rows reading those are rebuilt (``rows_built``
counts them), the sort order is patched in place, the totals are updated by block
(:class:`Rollup`), the lineage/forecast fields are re-derived (:class:`Enricher`) and the
snapshot names the keys that changed for the event stream.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from clawstats.core.catalog import Catalog
from clawstats.core.enricher import Enricher
from clawstats.core.health import Health, HealthLog
from clawstats.core.layered import Layered
from clawstats.core.rollup import Rollup
from clawstats.core.session import SessionRow, build_row
from clawstats.core.snapshot import Snapshot, TranscriptView
from clawstats.watch.base_prompts import BasePrompts
from clawstats.watch.cache import IndexCache
from clawstats.watch.cold import read_in_workers
from clawstats.watch.file_agent import ROW_GRACE_S, FileAgent
from clawstats.watch.layout import AgentSource
from clawstats.watch.rows import RowTable
from clawstats.watch.source import Source
from clawstats.watch.sqlite_store import SqliteAgent
from clawstats.watch.tail import DEFAULT_MAX_LINE_BYTES, Tail

Agent = FileAgent | SqliteAgent


class StatsStore:
    """Owns every agent's readers; call :meth:`scan` from one thread at a time only."""

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
        restored = cache.restore_all() if cache is not None else {}  # one pass over the index
        # Agents take theirs out of it in their first scan; what is left is forgotten then.
        self._restored: dict[str, Tail] | None = restored
        #: set by ``open_store`` for a server: follows agents (and the state dir) appearing later
        self.discovery: Callable[[], bool] | None = None
        self.agents: dict[str, Agent] = {}
        self._sources: dict[str, Source] = {}
        self._refs: dict[str, set[str]] = {}  # stats id -> row keys reading it
        self._archives: dict[str, set[str]] = {}  # row key -> keys of its archived transcripts
        self._tails: dict[str, tuple[str, Tail]] = {}  # stats id -> (agent, tail)
        self._tviews: dict[str, TranscriptView] = {}  # stats id -> frozen view
        self._counted: dict[str, tuple[str, TranscriptView]] = {}  # referenced transcripts
        self._pending: set[str] = set()  # keys to rebuild at the next scan (agents added, catalog)
        self._bases = BasePrompts(lambda agent_id: self.agents[agent_id].tails.items())
        self.table = RowTable()
        self._base_rows: dict[str, SessionRow] = {}  # rows as built, before enrichment
        self._fresh: set[str] = set()  # keys built in this publish
        self._enricher = Enricher()
        self._by_key: Layered[SessionRow] | None = None
        self._views: Layered[TranscriptView] | None = None
        self._dirty: set[str] = set()  # stats ids changed since the last flush
        self._last_flush = 0.0
        self.rollup = Rollup()
        self.rows_built = 0  # lifetime count of build_row calls (a test pins per-append work)
        self.revision = 0
        self.snapshot: Snapshot | None = None
        self._row_grace_s = ROW_GRACE_S
        for agent in agents:
            self.add_agent(agent)

    @property
    def row_grace_s(self) -> float:
        """How long a file-layout row may wait for its transcript before it counts as missing."""
        return self._row_grace_s

    @row_grace_s.setter
    def row_grace_s(self, value: float) -> None:
        self._row_grace_s = value
        for agent in self.agents.values():
            if isinstance(agent, FileAgent):
                agent.row_grace_s = value

    def add_agent(self, agent: AgentSource) -> None:
        """Follow an agent (at start-up, or found later: a new agent, or its file store now SQLite)."""
        self.health.layouts[agent.agent_id] = agent.layout
        old = self.agents.pop(agent.agent_id, None)
        if old is not None:  # upgraded to SQLite: its file rows and tails go (the database has every session)
            self._drop_agent(old)
        price = self.catalog.pricer(agent.agent_id)
        restored = self._restored if self._restored is not None else {}
        if agent.layout == "sqlite":
            self.agents[agent.agent_id] = SqliteAgent(agent, self.health, restored, price, self.max_line_bytes)
        else:
            files = FileAgent(agent, self.health, self.cache, restored, self.max_line_bytes, price)
            files.row_grace_s = self._row_grace_s
            self.agents[agent.agent_id] = files

    def _drop_agent(self, agent: Agent) -> None:
        self._bases.forget_agent(agent.source.agent_id)
        for key in list(agent.sources):
            self._set_source(key, None, self._pending)
        for stats_id in list(agent.tails):
            self._tails.pop(stats_id, None)
            self._tviews.pop(stats_id, None)
            self._count(stats_id)

    def set_catalog(self, catalog: Catalog) -> None:
        """A new catalog (config or an agent's ``models.json`` changed): every row is rebuilt, and
        when prices changed every transcript is read again (calls without a recorded cost are
        priced as they are read). The caller runs a full scan next."""
        repriced = catalog.identity() != self.catalog.identity()
        self.catalog = catalog
        self._enricher = Enricher()  # forecasts depend on the compaction settings
        self._pending.update(self._sources)
        if not repriced:
            return
        for agent_id, agent in list(self.agents.items()):
            if isinstance(agent, FileAgent):
                agent.reprice(catalog.pricer(agent_id))
            else:  # cursors from the index cache were priced with the old catalog: not reused
                self._drop_agent(agent)
                self.agents[agent_id] = SqliteAgent(
                    agent.source, self.health, None, catalog.pricer(agent_id), self.max_line_bytes
                )

    @property
    def tails(self) -> dict[str, Tail]:
        """Every transcript's tail (file) or cursor (SQLite), by stats id."""
        return {sid: tail for agent in self.agents.values() for sid, tail in agent.tails.items()}

    def all_paths(self) -> list[str]:
        """Every file-layout transcript path (the poller's safety sweep walks them)."""
        return [p for agent in self.agents.values() if isinstance(agent, FileAgent) for p in agent.tails]

    # -- scanning --------------------------------------------------------------------------

    def scan(self, changed: set[str] | None = None) -> Snapshot:
        """Bring statistics up to date. ``changed`` (paths from file-system events, plus a slice
        of the safety sweep) limits the transcripts stat'ed to those; None stats every one."""
        first = self.snapshot is None
        collecting = gc.isenabled()
        if first and collecting:
            # The first scan allocates millions of long-lived objects at 50,000 sessions; the
            # cyclic collector would walk them again and again (a fifth of a cold scan).
            gc.disable()
        try:
            return self._scan(changed)
        finally:
            if first and collecting:
                gc.freeze()  # what the first scan built is permanent: later collections skip it
                gc.enable()

    def _scan(self, changed: set[str] | None) -> Snapshot:
        started = time.perf_counter()
        state_dir = str(self.state_dir)
        if os.path.isdir(state_dir):
            self.health.clear_condition(state_dir)
        elif self.discovery is None or self.agents:  # with no agent yet, discovery says "waiting for state dir"
            self.health.set_condition(state_dir, "state dir is missing")
        cold = {agent_id: agent.prepare() for agent_id, agent in self.agents.items()}
        owner = {p: agent_id for agent_id, agent_paths in cold.items() for p in agent_paths}
        price_of = {agent_id: self.catalog.pricer(agent_id) for agent_id in cold}
        read = read_in_workers(
            list(owner), self.workers, self.max_line_bytes, self.health, lambda p: price_of[owner[p]]
        )
        for tail in read:
            agent = self.agents[owner[tail.path]]
            assert isinstance(agent, FileAgent)
            agent.adopt_read(tail)
        keys, self._pending = self._pending, set()
        bases_moved: set[str] = set()
        for agent_id, agent in self.agents.items():
            result = agent.scan(changed)
            for key in result.keys:
                self._set_source(key, agent.sources.get(key), keys)
            for stats_id in result.stats:
                current = agent.tails.get(stats_id)
                if current is None:
                    self._tails.pop(stats_id, None)
                    self._tviews.pop(stats_id, None)
                else:
                    self._tails[stats_id] = (agent_id, current)
                    self._tviews[stats_id] = TranscriptView.of(agent_id, current.stats)
                if self._bases.note(agent_id, stats_id, current):
                    bases_moved.add(agent_id)
                self._dirty.add(stats_id)
                self._count(stats_id)
                for key in self._refs.get(stats_id, ()):
                    keys.add(key)
                    owner_key = self._sources[key].archived_from
                    if owner_key is not None:
                        keys.add(owner_key)
        for agent_id in bases_moved:
            keys.update(self._bases.rows_showing(agent_id))
        self.health.last_scan_ms = time.time() * 1000.0
        self.health.last_scan_s = time.perf_counter() - started
        snapshot = self._publish(keys)
        if self._restored is not None:
            self._forget_unused(self._restored)
            self._restored = None
        self.flush()
        return snapshot

    def _forget_unused(self, left: dict[str, Tail]) -> None:
        """Cached transcripts of these agents that none of them read again."""
        if self.cache is None or not left:
            return
        roots: list[str] = []
        for agent in self.agents.values():
            roots.append(agent.source.sessions_dir + os.sep)  # transcripts, and archives beside a database
            if isinstance(agent, SqliteAgent):
                roots.append(agent.source.store + "#")
        self.cache.forget([path for path in left if path.startswith(tuple(roots))])

    def _set_source(self, key: str, src: Source | None, keys: set[str]) -> None:
        keys.add(key)
        old = self._sources.pop(key, None)
        if old is not None:
            if old.stats_id is not None:
                self._refs[old.stats_id].discard(key)
                if not self._refs[old.stats_id]:
                    del self._refs[old.stats_id]
                self._count(old.stats_id)
            if old.archived_from is not None:
                self._archives[old.archived_from].discard(key)
                keys.add(old.archived_from)
        if src is None:
            return
        self._sources[key] = src
        if src.stats_id is not None:
            self._refs.setdefault(src.stats_id, set()).add(key)
            self._count(src.stats_id)
        if src.archived_from is not None:
            self._archives.setdefault(src.archived_from, set()).add(key)
            keys.add(src.archived_from)

    def _count(self, stats_id: str) -> None:
        """Totals count a transcript once while some row reads it."""
        view = self._tviews.get(stats_id)
        if view is not None and stats_id in self._refs:
            self._counted[stats_id] = (view.agent_id, view)
            self.rollup.put(stats_id, view.agent_id, view)
        elif self._counted.pop(stats_id, None) is not None:
            self.rollup.drop(stats_id)

    def _earlier(self, key: str) -> float:
        total = 0.0
        for archive in sorted(self._archives.get(key, ())):
            src = self._sources[archive]
            found = self._tails.get(src.stats_id or "")
            if found is not None:
                total += found[1].stats.cost
        return total

    # -- publishing ------------------------------------------------------------------------

    def _source_of(self, key: str) -> Source | None:
        src = self._sources.get(key)
        if src is not None and src.row is None and not src.archived:
            found = self._tails.get(src.stats_id or "")
            if found is None or found[1].stats.entries == 0:
                return None  # a transcript without a row and without one valid record (binary) is no session
        return src

    def _build(self, src: Source) -> SessionRow:
        found = self._tails.get(src.stats_id or "")
        stats = found[1].stats if found is not None else None
        self.rows_built += 1
        row = build_row(
            src.key,
            src.agent_id,
            src.row,
            stats,
            self.catalog,
            archived=src.archived,
            archived_from=src.archived_from,
            earlier_cost=self._earlier(src.key),
            base_prompt=self._bases.of(src.agent_id),
        )
        self._bases.shown(src.agent_id, src.key, not src.archived and (stats is None or stats.last_prompt is None))
        self._base_rows[src.key] = row
        self._fresh.add(src.key)
        return row

    def _publish(self, keys: set[str]) -> Snapshot:
        table = self.table
        self._fresh = set()
        changed, removed = table.update(
            keys, self._source_of, self._build, lambda src: self._tviews.get(src.stats_id or "")
        )
        for key in removed:
            self._base_rows.pop(key, None)
            self._bases.forget(key)
        if changed or removed:
            # lineage, tree cost, forecast: the rebuilt rows, and any other whose lineage moved
            enriched = self._enricher.update(
                self._base_rows, table.views, self._fresh, removed, table.rows, self.catalog.compaction
            )
            for key, row in enriched.items():
                if table.rows.get(key) != row:
                    table.replace(row)
                    changed.add(key)
        # Frozen mappings for readers that share all but this change with the previous snapshot.
        if self._by_key is None or self._views is None:
            self._by_key, self._views = Layered.of(table.rows), Layered.of(table.views)
        elif changed or removed or keys:
            self._by_key = self._by_key.updated({k: table.rows[k] for k in changed}, removed)
            views = {k: table.views[k] for k in keys if k in table.views}
            self._views = self._views.updated(views, {k for k in keys if k not in table.views})
        health = self.health.freeze()
        if self.snapshot is not None and not changed and not removed and not self.rollup.dirty:
            if not _same_health(health, self.snapshot.health):
                self.revision += 1  # health is part of what readers see
                self.snapshot = replace(
                    self.snapshot,
                    revision=self.revision,
                    generated_ms=time.time() * 1000.0,
                    health=health,
                    changed=frozenset(),
                    removed=frozenset(),
                )
            else:  # same revision (so ETags hold), fresh scan times
                self.snapshot = replace(self.snapshot, health=health)
            return self.snapshot
        self.revision += 1
        self.snapshot = Snapshot(
            revision=self.revision,
            generated_ms=time.time() * 1000.0,
            state_dir=str(self.state_dir),
            rows=table.newest_first(),
            by_key=self._by_key,
            views=self._views,
            transcripts=tuple(self._counted.values()),
            totals=self.rollup.totals(len(table.rows), len(table.unknown)),
            health=health,
            catalog=self.catalog,
            changed=frozenset(changed),
            removed=frozenset(removed),
        )
        return self.snapshot

    # -- the persisted index ---------------------------------------------------------------

    def flush(self, force: bool = False) -> None:
        """Persist the transcripts changed since the last flush (at most every
        ``cache.min_interval_s`` unless ``force``)."""
        cache = self.cache
        if cache is None or not self._dirty:
            return
        now = time.monotonic()
        if not force and now - self._last_flush < cache.min_interval_s:
            return
        self._last_flush = now
        tails = [found[1] for sid in self._dirty if (found := self._tails.get(sid)) is not None]
        owners = {aid: dict(a.owners) for aid, a in self.agents.items() if isinstance(a, FileAgent)}
        cache.save(tails, owners)
        self._dirty.clear()

    def close(self) -> None:
        """Flush what is pending and close the persisted index."""
        self.flush(force=True)
        if self.cache is not None:
            self.cache.close()


def _same_health(a: Health, b: Health) -> bool:
    return (a.counters, a.conditions, a.layouts) == (b.counters, b.conditions, b.layouts)
