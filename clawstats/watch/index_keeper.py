"""``IndexKeeper``: the store's side of the persisted index (:class:`IndexCache`): what changed
since the last flush, when to flush it, what to forget after the first scan, and closing it.

The store is the only caller; the CLI and the poller go through ``StatsStore.flush``/``close``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping

from clawstats.watch.agents import Agent
from clawstats.watch.cache import IndexCache
from clawstats.watch.file_agent import FileAgent
from clawstats.watch.source import cursor_id
from clawstats.watch.sqlite_store import SqliteAgent
from clawstats.watch.tail import Tail


class IndexKeeper:
    """Pending stats ids and the flush clock of one optional :class:`IndexCache`."""

    def __init__(self, cache: IndexCache | None) -> None:
        self.cache = cache
        self.dirty: set[str] = set()  # stats ids changed since the last flush
        self._last_flush = 0.0

    def note(self, stats_id: str) -> None:
        """A transcript changed: persisted at the next flush. Without a cache nothing is kept
        (a set of every transcript ever read was 100 bytes a session in ``serve --no-cache``)."""
        if self.cache is not None:
            self.dirty.add(stats_id)

    def restore(self) -> dict[str, Tail]:
        """Every cached transcript, in one pass over the index (empty without a cache)."""
        return self.cache.restore_all() if self.cache is not None else {}

    def forget_unused(self, left: dict[str, Tail], agents: Iterable[Agent]) -> None:
        """Cached transcripts of these agents that none of them read again."""
        if self.cache is None or not left:
            return
        roots: list[str] = []
        for agent in agents:
            roots.append(agent.source.sessions_dir + os.sep)  # transcripts, and archives beside a database
            if isinstance(agent, SqliteAgent):
                roots.append(cursor_id(agent.source.agent_id, ""))
                roots.append(agent.source.store + "#")  # cursors cached by earlier builds
        self.cache.forget([path for path in left if path.startswith(tuple(roots))])

    def flush(self, tails: Mapping[str, tuple[str, Tail]], agents: Mapping[str, Agent], force: bool = False) -> None:
        """Persist the transcripts changed since the last flush (at most every
        ``cache.min_interval_s`` unless ``force``)."""
        cache = self.cache
        if cache is None or not self.dirty:
            return
        now = time.monotonic()
        if not force and now - self._last_flush < cache.min_interval_s:
            return
        self._last_flush = now
        saved = [found[1] for sid in self.dirty if (found := tails.get(sid)) is not None]
        owners = {aid: dict(a.owners) for aid, a in agents.items() if isinstance(a, FileAgent)}
        cache.save(saved, owners)
        self.dirty.clear()

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
