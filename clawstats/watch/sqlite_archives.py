"""Reset/deleted transcript files left beside a SQLite store, as OpenClaw's usage report counts them.

A migration imports the live sessions into the database (their files go to
``session-sqlite-import-archive/``, never read: they would count twice) and leaves the archives
of earlier sessions in ``sessions/``, their only record. :class:`ArchivesBeside` lists them (on
the first and every safety scan, and when an event names that directory), follows each as a
file :class:`Tail` and puts its rows and tails into its :class:`SqliteAgent`'s maps.
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterable
from typing import Protocol

from clawstats.core.health import HealthLog
from clawstats.core.usage import Pricer
from clawstats.watch.locate import classify
from clawstats.watch.sessionkeys import owner_from_trajectory
from clawstats.watch.source import Source
from clawstats.watch.tail import Tail


class Owner(Protocol):
    """What of the SQLite agent the archives write into (its joined maps and change sets)."""

    price: Pricer | None
    archived: dict[str, Source]  # its archives' rows, by key
    tails: dict[str, Tail]
    changed_stats: set[str]

    def note(self, keys: Iterable[str]) -> None:
        """Keys whose source is about to change (reported by the agent's next scan)."""


class ArchivesBeside:
    def __init__(self, sessions_dir: str, agent_id: str, health: HealthLog, max_line_bytes: int) -> None:
        self.sessions_dir = sessions_dir
        self.agent_id = agent_id
        self.health = health
        self.max_line_bytes = max_line_bytes
        self.keys: set[str] = set()  # row keys of the archive files
        self.paths: set[str] = set()  # their stats ids (paths), all in the agent's ``tails``
        self._unread: set[str] = set()  # of those, the ones never polled (``file_id`` None)
        self._owners: dict[str, str] = {}  # trajectory path -> key (an archive's owner never changes)
        self._listed = False

    def scan(
        self, changed: set[str] | None, in_database: Container[str], agent: Owner, restored: dict[str, Tail]
    ) -> None:
        """List when due, then poll the archives named by ``changed`` (all when None) and new ones."""
        prefix = self.sessions_dir + os.sep
        named = changed is not None and any(p.startswith(prefix) or p == self.sessions_dir for p in changed)
        if changed is None or named or not self._listed:
            self._listed = True
            self._list(in_database, agent, restored)
        # By this object's own sets, never by walking the agent's tails (every session of the database).
        due = self.paths if changed is None else (changed & self.paths) | self._unread
        for path in sorted(due):
            tail = agent.tails[path]
            before = tail.revision
            try:
                tail.poll(self.health, self.max_line_bytes)
                self.health.clear_condition(path)
            except FileNotFoundError:
                continue  # gone between listing and reading: the next listing settles it
            except OSError as exc:
                self.health.set_condition(path, f"cannot read: {exc.strerror or exc}")
            if tail.identified:
                self._unread.discard(path)
            if tail.revision != before:
                agent.changed_stats.add(path)

    def _list(self, in_database: Container[str], agent: Owner, restored: dict[str, Tail]) -> None:
        try:
            names = frozenset(os.listdir(self.sessions_dir))
        except OSError:
            names = frozenset()
        _live, archives = classify(self.sessions_dir, names)
        found: dict[str, Source] = {}
        for sid, path in archives:
            if sid in in_database:
                continue
            trajectory = os.path.join(self.sessions_dir, f"{sid}.trajectory.jsonl")
            owner = self._owners.get(trajectory)
            if owner is None:
                owner = owner_from_trajectory(trajectory)
                if owner is not None:
                    self._owners[trajectory] = owner
            key = f"agent:{self.agent_id}:{sid}"
            found[key] = Source(key, self.agent_id, None, path, True, owner)
        for key in self.keys - found.keys():
            agent.note((key,))
            old = agent.archived.pop(key, None)
            if old is not None and old.stats_id is not None and agent.tails.pop(old.stats_id, None) is not None:
                agent.changed_stats.add(old.stats_id)
                self.health.clear_condition(old.stats_id)
        for key, src in found.items():
            if agent.archived.get(key) != src:
                agent.note((key,))
                agent.archived[key] = src
            assert src.stats_id is not None
            if src.stats_id not in agent.tails:
                tail = restored.pop(src.stats_id, None) or Tail(src.stats_id, agent.price)
                tail.use_price(agent.price)
                agent.tails[src.stats_id] = tail
                agent.changed_stats.add(src.stats_id)
                if tail.file_id is None:
                    self._unread.add(src.stats_id)
        self.keys = set(found)
        self.paths = {src.stats_id for src in found.values() if src.stats_id is not None}
        self._unread &= self.paths
