"""``Joins``: which rows read which transcripts, kept for the store between scans.

Each row key has a :class:`Source` (its index row, the stats id of the transcript it reads, the
key it is an archive of); each transcript an agent reports has its tail and a frozen
:class:`TranscriptView`. The totals (:class:`Rollup`) count a transcript once while some row
reads it, however many do. One writer: the store.
"""

from __future__ import annotations

from clawstats.core.rollup import Rollup
from clawstats.core.snapshot import TranscriptView
from clawstats.watch.source import Source
from clawstats.watch.tail import Tail


class Joins:
    """Sources by row key, transcripts by stats id, and the references between them."""

    def __init__(self) -> None:
        self.sources: dict[str, Source] = {}
        # stats id -> row keys reading it: a tuple (48 bytes for the usual one key, a set is 216)
        self.refs: dict[str, tuple[str, ...]] = {}
        self.archives: dict[str, set[str]] = {}  # row key -> keys of its archived transcripts
        self.tails: dict[str, tuple[str, Tail]] = {}  # stats id -> (agent, tail)
        self.tviews: dict[str, TranscriptView] = {}  # stats id -> frozen view
        self.counted: dict[str, tuple[str, TranscriptView]] = {}  # referenced transcripts
        self.rollup = Rollup()

    def set_source(self, key: str, src: Source | None, keys: set[str]) -> None:
        """A row's source changed (None: the row is gone); ``keys`` collects the rows to rebuild."""
        keys.add(key)
        old = self.sources.pop(key, None)
        if old is not None:
            if old.stats_id is not None:
                rest = tuple(k for k in self.refs[old.stats_id] if k != key)
                if rest:
                    self.refs[old.stats_id] = rest
                else:
                    del self.refs[old.stats_id]
                self.count(old.stats_id)
            if old.archived_from is not None:
                self.archives[old.archived_from].discard(key)
                keys.add(old.archived_from)
        if src is None:
            return
        self.sources[key] = src
        if src.stats_id is not None:
            readers = self.refs.get(src.stats_id, ())
            if key not in readers:
                self.refs[src.stats_id] = (*readers, key)
            self.count(src.stats_id)
        if src.archived_from is not None:
            self.archives.setdefault(src.archived_from, set()).add(key)
            keys.add(src.archived_from)

    def put_tail(self, agent_id: str, stats_id: str, current: Tail | None) -> None:
        """A transcript's statistics changed (``current`` None: it is gone)."""
        if current is None:
            self.tails.pop(stats_id, None)
            self.tviews.pop(stats_id, None)
        else:
            self.tails[stats_id] = (agent_id, current)
            # A packed (idle) transcript's view is read from its dump: never unpacked here, so a
            # cold start over 50,000 adopted transcripts never holds all their statistics at once.
            self.tviews[stats_id] = current.view(agent_id)

    def drop_tail(self, stats_id: str) -> None:
        """A transcript of an agent no longer followed."""
        self.tails.pop(stats_id, None)
        self.tviews.pop(stats_id, None)
        self.count(stats_id)

    def add_readers(self, stats_id: str, keys: set[str]) -> None:
        """Add the rows reading this transcript, and the rows they are archives of, to ``keys``."""
        for key in self.refs.get(stats_id, ()):
            keys.add(key)
            owner_key = self.sources[key].archived_from
            if owner_key is not None:
                keys.add(owner_key)

    def count(self, stats_id: str) -> None:
        """Totals count a transcript once while some row reads it."""
        view = self.tviews.get(stats_id)
        if view is not None and stats_id in self.refs:
            member = self.counted[stats_id] = (view.agent_id, view)
            self.rollup.put(stats_id, member)
        elif self.counted.pop(stats_id, None) is not None:
            self.rollup.drop(stats_id)

    def earlier(self, key: str) -> float:
        """The cost of a row's archived transcripts (its earlier resets)."""
        archives = self.archives.get(key)
        if not archives:
            return 0.0  # (most rows: no sort of nothing)
        total = 0.0
        for archive in sorted(archives):
            src = self.sources[archive]
            found = self.tails.get(src.stats_id or "")
            if found is not None:
                total += found[1].peek().cost  # archives are idle: packed, never unpacked here
        return total

    def source_of(self, key: str) -> Source | None:
        """A row's source, or None when it is no session."""
        src = self.sources.get(key)
        if src is not None and src.row is None and not src.archived:
            found = self.tails.get(src.stats_id or "")
            if found is None or found[1].peek().entries == 0:
                return None  # a transcript without a row and without one valid record (binary) is no session
        return src
