"""``TranscriptViews``: every followed transcript's frozen view by stats id, without a map of its own
for the counted ones (nearly all: a transcript some row reads).

The rollup keeps each counted transcript's view already (its members, by stats id, in blocks a
snapshot shares); a second dict of every view beside it was ~37 bytes a transcript (~1.9 MB at
52,000). So the views are read from the members, and only the others are kept here: a view put
and not counted yet (the store counts it right after), one no row reads, and, while a counted
transcript is gone but not yet dropped from the totals, a mark that it is gone. The rollup
(:class:`ViewRollup`) keeps the two in step: counting a view takes it out of this map, dropping
one still followed puts it back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import cast

from clawstats.core.rollup import Kept, Rollup
from clawstats.core.snapshot import TranscriptView

__all__ = ["TranscriptViews", "ViewRollup"]

_ABSENT = object()


class ViewRollup(Rollup):
    """A :class:`Rollup` whose members are the views of a :class:`TranscriptViews`."""

    def __init__(self) -> None:
        super().__init__()
        # stats id -> a view not counted (None: the transcript is gone, its member not dropped yet)
        self.loose: dict[str, TranscriptView | None] = {}

    def put(self, stats_id: str, member: Kept) -> None:
        super().put(stats_id, member)
        self.loose.pop(stats_id, None)  # read from the members from now on

    def view(self, stats_id: str) -> TranscriptView | None:
        """The transcript's view: its own (None: gone), else its member's (one function: the
        store and the publisher ask it of every transcript on a cold scan)."""
        view = self.loose.get(stats_id, _ABSENT)
        if view is _ABSENT:  # (no cast() calls: a function call each at run time)
            return self.kept(stats_id)  # type: ignore[return-value]
        return view  # type: ignore[return-value]

    def drop(self, stats_id: str) -> None:
        kept = self.kept(stats_id)
        if kept is not None:
            loose = self.loose
            if stats_id not in loose:  # still followed, no row reads it: its view stays
                loose[stats_id] = cast(TranscriptView, kept)
            elif loose[stats_id] is None:  # gone: the mark goes with it
                del loose[stats_id]
        super().drop(stats_id)


class TranscriptViews(Mapping[str, TranscriptView]):
    """stats id -> view: the rollup's member, unless this map holds another (or marks it gone)."""

    __slots__ = ("_rollup",)

    def __init__(self, rollup: ViewRollup) -> None:
        self._rollup = rollup

    def __getitem__(self, stats_id: str) -> TranscriptView:
        view = self._rollup.view(stats_id)
        if view is None:
            raise KeyError(stats_id)
        return view

    def get(self, stats_id: str, default: TranscriptView | None = None) -> TranscriptView | None:  # type: ignore[override]
        """(Without the KeyError a Mapping's ``get`` catches: the store asks for every transcript.)"""
        view = self._rollup.view(stats_id)
        return view if view is not None else default

    def __iter__(self) -> Iterator[str]:
        loose = self._rollup.loose
        yield from (stats_id for stats_id, view in loose.items() if view is not None)
        yield from (stats_id for stats_id in self._rollup.ids() if stats_id not in loose)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def put(self, stats_id: str, view: TranscriptView) -> None:
        """The transcript's new view (counted by the store next, or not)."""
        self._rollup.loose[stats_id] = view

    def remove(self, stats_id: str) -> None:
        """The transcript is gone (its member, if counted, is dropped from the totals next)."""
        loose = self._rollup.loose
        if self._rollup.kept(stats_id) is not None:
            loose[stats_id] = None
        else:
            loose.pop(stats_id, None)

    def swap(self, stats_id: str, old: TranscriptView, new: TranscriptView) -> None:
        """``new`` in place of ``old`` (the same statistics, held otherwise): no sum moves."""
        loose = self._rollup.loose
        if loose.get(stats_id) is old:
            loose[stats_id] = new
        elif self._rollup.kept(stats_id) is old:
            self._rollup.swap(stats_id, new)
