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
        self.dirty_keys: dict[str, set[str]] = {}  # agent id -> row keys changed since the last flush
        self._learnt_saved: dict[str, dict[str, str]] = {}  # agent id -> its learnt owners last saved
        self._last_flush = 0.0

    def note(self, stats_id: str) -> None:
        """A transcript changed: persisted at the next flush. Without a cache nothing is kept
        (a set of every transcript ever read was 100 bytes a session in ``serve --no-cache``)."""
        if self.cache is not None:
            self.dirty.add(stats_id)

    def note_keys(self, agent_id: str, keys: Iterable[str]) -> None:
        """Rows whose source changed: their session ids' owners are persisted at the next flush."""
        if self.cache is not None and keys:
            self.dirty_keys.setdefault(agent_id, set()).update(keys)

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
                roots.append(cursor_id(agent.source.agent_id, ""))  # (earlier builds' "<db>#<sid>": see restore_all)
        self.cache.forget([path for path in left if path.startswith(tuple(roots))])

    def flush(self, tails: Mapping[str, tuple[str, Tail]], agents: Mapping[str, Agent], force: bool = False) -> None:
        """Persist the transcripts changed since the last flush (at most every
        ``cache.min_interval_s`` unless ``force``), and the owners that moved (a forced flush, on
        closing, also when no transcript changed: an owner learnt from a reset)."""
        cache = self.cache
        if cache is None or not (self.dirty or self.dirty_keys or force):
            return
        now = time.monotonic()
        if not force and now - self._last_flush < cache.min_interval_s:
            return
        self._last_flush = now
        saved = [found[1] for sid in self.dirty if (found := tails.get(sid)) is not None]
        cache.save(saved, self._owners(agents))
        self.dirty.clear()
        self.dirty_keys.clear()

    def _owners(self, agents: Mapping[str, Agent]) -> list[tuple[str, str, str]]:
        """``(agent, sessionId, key)`` to persist: the ids of the rows changed since the last flush
        (a row's id is its key's, unless learnt otherwise) and the owners an agent learnt (ids no
        row names now, or named by a row since: an alias of a reset key) that moved."""
        owners: list[tuple[str, str, str]] = []
        for agent_id, agent in agents.items():
            if not isinstance(agent, FileAgent):
                continue
            rows, learnt = agent.index.rows, agent.learnt
            # In key order: of two rows naming one id, the same one is saved whatever the hash seed.
            for key in sorted(self.dirty_keys.get(agent_id, ())):
                row = rows.get(key)
                # What was learnt comes first (``FileAgent.owners``, ``_owner``): a row naming that
                # id written again must not overwrite it (a restart would restore the row's key).
                if row is not None and row.sessionId and learnt.get(row.sessionId, key) == key:
                    owners.append((agent_id, row.sessionId, key))
            saved = self._learnt_saved.get(agent_id, {})
            if learnt != saved:
                owners.extend((agent_id, sid, key) for sid, key in learnt.items() if saved.get(sid) != key)
                self._learnt_saved[agent_id] = dict(learnt)
        return owners

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
