"""``Joins``: which rows read which transcripts, kept for the store between scans.

Each row key has a :class:`Source` (its index row, the stats id of the transcript it reads, the
key it is an archive of); each transcript an agent reports has its tail and a frozen
:class:`TranscriptView`. The totals (:class:`Rollup`) count a transcript once while some row
reads it, however many do. One writer: the store.

Every map here holds an entry per session (at 50,000 sessions a map's table is ~2.6 MB, ~50
bytes a session), so none is kept twice: a transcript's tail is its view's ``source`` (no map
of its own), which transcripts are counted is the rollup's membership, a counted transcript's
view is read from that membership (``watch/tviews.py``: no map of every view), and a row's source
is its agent's (:class:`AgentSources`: the agents tell the old source of a key that changed).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import cast

from clawstats.core.snapshot import TranscriptView
from clawstats.watch.source import AgentSources, HasSources, Source
from clawstats.watch.tail import Tail
from clawstats.watch.tviews import TranscriptViews, ViewRollup

#: Bytes of table the map of tail-less stats ids may keep beyond ~64 a stats id it holds.
_TABLE_SLACK_B = 256


class Tails(Mapping[str, tuple[str, Tail]]):
    """stats id -> (agent, tail), read from the views (a view's ``source`` is its tail): no
    second map of every transcript."""

    __slots__ = ("_views",)

    def __init__(self, views: Mapping[str, TranscriptView]) -> None:
        self._views = views

    def __getitem__(self, stats_id: str) -> tuple[str, Tail]:
        view = self._views[stats_id]
        return view.agent_id, cast(Tail, view.source)

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)


class Joins:
    """Sources by row key, transcripts by stats id, and the references between them."""

    def __init__(self, agents: Mapping[str, HasSources]) -> None:
        self.sources = AgentSources(agents)  # row key -> Source, the agents' own
        # The row key(s) reading a transcript are its tail's ``readers`` (one slot, 16 bytes a
        # tail, where a map of every transcript was ~37 bytes); only a stats id without a tail (a
        # row naming a transcript not there, or not read yet; one gone) has them here:
        # stats id -> the key itself (no 48-byte tuple), or a tuple when several (a set: 216 B)
        self.refs: dict[str, str | tuple[str, ...]] = {}
        self.archives: dict[str, set[str]] = {}  # row key -> keys of its archived transcripts
        self.owners: dict[str, str] = {}  # and back: an archive's key -> the key it is an archive of
        self.rollup = ViewRollup()  # counts the referenced transcripts
        self.tviews = TranscriptViews(self.rollup)  # stats id -> frozen view (its source: the tail)
        self.tails = Tails(self.tviews)  # stats id -> (agent, tail)

    def set_source(self, key: str, old: Source | None, src: Source | None, keys: set[str]) -> None:
        """A row's source changed from ``old`` (None: a new row; its agent tells it) to ``src``
        (None: the row is gone; its agent holds it now); ``keys`` collects the rows to rebuild."""
        keys.add(key)
        if old is not None:
            if old.stats_id is not None:
                self._set_readers(old.stats_id, tuple(k for k in self.readers(old.stats_id) if k != key))
                self.count(old.stats_id)
            if old.archived_from is not None:
                self.archives.get(old.archived_from, set()).discard(key)
                self.owners.pop(key, None)
                keys.add(old.archived_from)
        if src is None:
            return
        if src.stats_id is not None:
            readers = self.readers(src.stats_id)
            if key not in readers:
                self._set_readers(src.stats_id, (*readers, key))
            self.count(src.stats_id)
        if src.archived_from is not None:
            self.archives.setdefault(src.archived_from, set()).add(key)
            self.owners[key] = src.archived_from
            keys.add(src.archived_from)

    def readers(self, stats_id: str) -> tuple[str, ...]:
        """The row keys reading this transcript."""
        view = self.rollup.view(stats_id)  # (no cast() calls: one call less per look-up)
        found = view.source.readers if view is not None else self.refs.get(stats_id)  # type: ignore[attr-defined]
        if found is None:
            return ()
        return (found,) if isinstance(found, str) else found

    def _set_readers(self, stats_id: str, keys: tuple[str, ...]) -> None:
        found = keys[0] if len(keys) == 1 else keys or None
        view = self.rollup.view(stats_id)
        if view is not None:
            view.source.readers = found  # type: ignore[attr-defined]
        elif found is not None:
            self.refs[stats_id] = found
        else:
            self.refs.pop(stats_id, None)

    def _move_readers(self, stats_id: str, old: Tail | None, new: Tail | None) -> None:
        """The transcript's tail is ``new`` from now on (None: it has none): its readers move
        there from ``old`` (None: from the map of tail-less stats ids)."""
        if old is new:
            return
        if old is not None:
            found, old.readers = old.readers, None
        else:
            found = self.refs.pop(stats_id, None)
        if new is not None:
            new.readers = found
        elif found is not None:
            self.refs[stats_id] = found

    def _tail(self, stats_id: str) -> Tail | None:
        view = self.rollup.view(stats_id)
        return view.source if view is not None else None  # type: ignore[return-value]

    def settle(self) -> None:
        """After a scan: the map of tail-less stats ids made again when its table outgrew what it
        holds (a cold scan names every transcript there before its tail is put: ~10-20 bytes a
        row of table a dict never gives back when emptied)."""
        refs = self.refs
        if sys.getsizeof(refs) > _TABLE_SLACK_B + 64 * len(refs):
            self.refs = dict(refs)

    def put_tail(self, agent_id: str, stats_id: str, current: Tail | None) -> None:
        """A transcript's statistics changed (``current`` None: it is gone)."""
        old = self._tail(stats_id)
        if old is not current:  # (the same tail: most changes)
            self._move_readers(stats_id, old, current)
        if current is None:
            self.tviews.remove(stats_id)
        else:
            # A packed (idle) transcript's view is read from its dump: never unpacked here, so a
            # cold start over 50,000 adopted transcripts never holds all their statistics at once.
            self.tviews.put(stats_id, current.view(agent_id))

    def repack(self, stats_id: str) -> bool:
        """A transcript idle since it was written to packed its statistics: its view is read from
        the dump from now on (~400 bytes of decoded buckets less), in the totals' members too.
        The statistics are the same, so nothing is summed again and no row is rebuilt. True when
        the view was swapped (the rows reading it then show the new one)."""
        view = self.tviews.get(stats_id)
        if view is None or isinstance(view.held, bytes):
            return False
        tail = cast(Tail, view.source)
        if not tail.packed or tail.generation != view.generation:
            return False
        packed = tail.view(view.agent_id)
        if packed.points != view.points:  # (not the statistics this view was made of)
            return False
        self.tviews.swap(stats_id, view, packed)  # (in the totals' members too: no sum moves)
        return True

    def drop_tail(self, stats_id: str) -> None:
        """A transcript of an agent no longer followed."""
        self._move_readers(stats_id, self._tail(stats_id), None)
        self.tviews.remove(stats_id)
        self.count(stats_id)

    def row_view(self, key: str) -> TranscriptView | None:
        """The view of the transcript a row's source reads (None: it reads none, or none read)."""
        src = self.sources.get(key)
        return self.tviews.get(src.stats_id) if src is not None and src.stats_id is not None else None

    def add_readers(self, stats_id: str, keys: set[str]) -> None:
        """Add the rows reading this transcript, and the rows they are archives of, to ``keys``."""
        owners = self.owners
        for key in self.readers(stats_id):
            keys.add(key)
            owner_key = owners.get(key)  # (no look-up of the source: a cold scan adds every row)
            if owner_key is not None:
                keys.add(owner_key)

    def count(self, stats_id: str) -> None:
        """Totals count a transcript once while some row reads it."""
        view = self.rollup.view(stats_id)
        if view is not None and view.source.readers is not None:  # type: ignore[attr-defined]
            counted = self.rollup.member(stats_id)
            # The same view counted again (another row reads it, a row's index fields changed):
            # nothing to sum again (its buckets, of an idle transcript, are not decoded twice).
            if counted is None or counted[1] is not view:
                self.rollup.put(stats_id, view)  # (it names its agent: no tuple kept)
        else:
            self.rollup.drop(stats_id)  # (nothing when it was not counted)

    def earlier(self, key: str) -> float:
        """The cost of a row's archived transcripts (its earlier resets)."""
        archives = self.archives.get(key)
        if not archives:
            return 0.0  # (most rows: no sort of nothing)
        total = 0.0
        for archive in sorted(archives):
            src = self.sources.get(archive)
            found = self.tails.get(src.stats_id or "") if src is not None else None
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
