"""``StatsStore``: the one writer of statistics. It joins what its agents (one
:class:`FileAgent` or :class:`SqliteAgent` per agent, built by :mod:`.agents`) report into rows
(:class:`Joins`) and publishes an immutable :class:`Snapshot` (:class:`Publisher`; the same
object when nothing changed). It owns the persisted index's lifecycle (:meth:`flush`,
:meth:`close`, through :class:`IndexKeeper`).

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
from collections.abc import Callable, Mapping
from pathlib import Path

from clawstats.core.catalog import Catalog
from clawstats.core.enricher import Enricher
from clawstats.core.health import HealthLog
from clawstats.core.rollup import Rollup
from clawstats.core.snapshot import Snapshot
from clawstats.watch.agents import Agent, make_agent, read_cold
from clawstats.watch.base_prompts import BasePrompts
from clawstats.watch.cache import IndexCache
from clawstats.watch.file_agent import ROW_GRACE_S, FileAgent
from clawstats.watch.index_keeper import IndexKeeper
from clawstats.watch.joins import Joins
from clawstats.watch.layout import AgentSource
from clawstats.watch.publisher import Publisher
from clawstats.watch.source import Source
from clawstats.watch.sqlite_store import SqliteAgent
from clawstats.watch.tail import DEFAULT_MAX_LINE_BYTES, Tail


def _libc(name: str) -> Callable[..., int] | None:
    """A glibc function of this process (None where there is none: another C library)."""
    import ctypes  # here: only a read that tunes or trims the C heap imports it

    try:
        found: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    return found


def release_free_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; a no-op where
    there is none). The first scan frees what it decoded between what it keeps: ~13 MiB of RSS
    at 50,000 sessions that a long-running server would otherwise hold for good."""
    trim = _libc("malloc_trim")
    if trim is not None:
        trim(0)


#: glibc's ``M_MMAP_THRESHOLD`` parameter of ``mallopt``.
_M_MMAP_THRESHOLD = -3
#: Blocks from this size up get their own mapping, returned whole when freed.
MMAP_THRESHOLD_BYTES = 1 << 20


def tune_allocator() -> bool:
    """Blocks of ``MMAP_THRESHOLD_BYTES`` and more mapped on their own (glibc raises this
    threshold by itself up to 32 MiB after a big block is freed, so the 1-32 MiB buffers of
    encoding and compressing 49 MB bodies at 50,000 sessions, or of the workers' batches, then
    came from the heap and left it fragmented: a server held 293 vs 268 MiB after the sweep's
    appends and requests). True when set (glibc)."""
    mallopt = _libc("mallopt")
    return mallopt is not None and bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


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
        self.max_line_bytes = max_line_bytes
        self.workers = workers  # > 1: cold reads of many files fan out to worker processes
        self.health = HealthLog()
        self._index = IndexKeeper(cache)
        # One pass over the index: agents take theirs out of it in their first scan; what is
        # left is forgotten then.
        self._restored: dict[str, Tail] | None = self._index.restore()
        #: set by ``open_store`` for a server: follows agents (and the state dir) appearing later
        self.discovery: Callable[[], bool] | None = None
        self.agents: dict[str, Agent] = {}
        self._joins = Joins(self.agents)
        self._pending: set[str] = set()  # keys to rebuild at the next scan (agents added, catalog)
        self._bases = BasePrompts(lambda agent_id: self.agents[agent_id].tails.items())
        self._publisher = Publisher(state_dir, catalog, self.health, self._joins, self._bases)
        self._row_grace_s = ROW_GRACE_S
        for agent in agents:
            self.add_agent(agent)

    # -- what readers and tests look at ------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        return self._publisher.catalog

    @property
    def cache(self) -> IndexCache | None:
        return self._index.cache

    @property
    def snapshot(self) -> Snapshot | None:
        """The last snapshot published (None before the first scan)."""
        return self._publisher.snapshot

    @property
    def rows_built(self) -> int:
        """Lifetime count of rows built (a test pins the work of one append)."""
        return self._publisher.rows_built

    @property
    def rollup(self) -> Rollup:
        return self._joins.rollup

    @property
    def _sources(self) -> Mapping[str, Source]:
        return self._joins.sources

    @property
    def _enricher(self) -> Enricher:
        return self._publisher.enricher

    @property
    def split_rows(self) -> bool:
        """A cold start's rows built in two processes (one-shot reads: see :mod:`.split`)."""
        return self._publisher.split_rows

    @split_rows.setter
    def split_rows(self, value: bool) -> None:
        self._publisher.split_rows = value

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

    @property
    def tails(self) -> dict[str, Tail]:
        """Every transcript's tail (file) or cursor (SQLite), by stats id."""
        return {sid: tail for agent in self.agents.values() for sid, tail in agent.tails.items()}

    def all_paths(self) -> list[str]:
        """Every file-layout transcript path (the poller's safety sweep walks them)."""
        return [p for agent in self.agents.values() if isinstance(agent, FileAgent) for p in agent.tails]

    # -- the agent set -----------------------------------------------------------------------

    def add_agent(self, agent: AgentSource) -> None:
        """Follow an agent (at start-up, or found later: a new agent, or its file store now SQLite)."""
        self.health.layouts[agent.agent_id] = agent.layout
        self._publisher.follow(agent)
        old = self.agents.pop(agent.agent_id, None)
        if old is not None:  # upgraded to SQLite: its file rows and tails go (the database has every session)
            self._drop_agent(old)
        price = self.catalog.pricer(agent.agent_id)
        restored = self._restored if self._restored is not None else {}
        self.agents[agent.agent_id] = make_agent(
            agent, self.health, self.cache, restored, price, self.max_line_bytes, self._row_grace_s, self.workers
        )

    def _drop_agent(self, agent: Agent) -> None:
        self._bases.forget_agent(agent.source.agent_id)
        for key, src in list(agent.sources.items()):
            self._joins.set_source(key, src, None, self._pending)
        for stats_id in list(agent.tails):
            self._joins.drop_tail(stats_id)

    def set_catalog(self, catalog: Catalog) -> None:
        """A new catalog (config or an agent's ``models.json`` changed): every row is rebuilt, and
        when prices changed every transcript is read again (calls without a recorded cost are
        priced as they are read). The caller runs a full scan next."""
        repriced = catalog.identity() != self.catalog.identity()
        self._publisher.set_catalog(catalog)
        self._pending.update(self._joins.sources)
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
            if first:
                release_free_heap()

    def _scan(self, changed: set[str] | None) -> Snapshot:
        started = time.perf_counter()
        state_dir = str(self.state_dir)
        if os.path.isdir(state_dir):
            self.health.clear_condition(state_dir)
        elif self.discovery is None or self.agents:  # with no agent yet, discovery says "waiting for state dir"
            self.health.set_condition(state_dir, "state dir is missing")
        read_cold(self.agents, self.catalog, self.workers, self.max_line_bytes, self.health, changed)
        joins = self._joins
        keys, self._pending = self._pending, set()
        bases_moved: set[str] = set()
        repacked: set[str] = set()  # rows whose transcript's view is now read from its dump
        for agent_id, agent in self.agents.items():
            result = agent.scan(changed)
            sources = agent.sources
            for key, old in result.keys.items():
                joins.set_source(key, old, sources.get(key), keys)
            self._index.note_keys(agent_id, result.keys)
            for stats_id in result.stats:
                current = agent.tails.get(stats_id)
                joins.put_tail(agent_id, stats_id, current)
                if self._bases.note(agent_id, stats_id, current):
                    bases_moved.add(agent_id)
                self._index.note(stats_id)
                joins.count(stats_id)
                joins.add_readers(stats_id, keys)
            for stats_id in result.packed:
                if joins.repack(stats_id):
                    repacked.update(joins.readers(stats_id))
        joins.settle()
        for agent_id in bases_moved:
            keys.update(self._bases.rows_showing(agent_id))
        self.health.last_scan_ms = time.time() * 1000.0
        self.health.last_scan_s = time.perf_counter() - started
        snapshot = self._publisher.publish(keys, repacked)
        if self._restored is not None:
            self._index.forget_unused(self._restored, self.agents.values())
            self._restored = None
            # The first scan's flush (every transcript read from nothing: ~1 s at 50,000) is left
            # to the next scan or to closing, so a server serves its first rows before it.
        else:
            self.flush()
        return snapshot

    # -- the persisted index ---------------------------------------------------------------

    def flush(self, force: bool = False) -> None:
        """Persist the transcripts changed since the last flush (at most every
        ``cache.min_interval_s`` unless ``force``)."""
        self._index.flush(self._joins.tails, self.agents, force)

    def close(self) -> None:
        """Flush what is pending and close the persisted index."""
        self.flush(force=True)
        self._index.close()
