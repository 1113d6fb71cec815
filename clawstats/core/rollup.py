"""``Rollup``: the totals kept by delta, so a change to one transcript costs its own buckets.

Each (day, model) bucket of a counted transcript is added to four exact sums
(:class:`~clawstats.core.exact.Sum`): the total's, its agent's, its day's and its model's. A
change takes the transcript's previous buckets out and adds its new ones, so an append costs a
few bucket additions whatever the number of transcripts. The sums are exact (money in units of
2**-1074 USD, rounded to a float once per published figure), so the totals are those of a rollup
given the same transcripts at once, whatever the order of changes; only the groups a change
touched are figured again.

The rollup also keeps the counted transcripts, in ``BLOCKS`` dicts by a hash of their id, copied on
write once :meth:`Rollup.members` handed them to a snapshot: a snapshot's "every transcript once"
costs a change one block's copy, not a copy of every transcript.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from typing import Protocol

from clawstats.core.exact import Sum, exact
from clawstats.core.figures import HasBuckets, figure_of
from clawstats.core.totals import GROUP_BY, Totals, UsageGroup, totals_of
from clawstats.core.usage import Bucket

BLOCKS = 256
Member = tuple[str, HasBuckets]  # (agent id, buckets)


class Counted(Protocol):
    """A transcript that names its agent (a ``TranscriptView``): counted as itself."""

    @property
    def agent_id(self) -> str: ...
    @property
    def buckets(self) -> Mapping[tuple[str, str], Bucket]: ...


#: What is kept per counted transcript: the store's view itself (no (agent, view) tuple: 56
#: bytes a transcript), or an (agent id, buckets) pair.
Kept = Counted | Member


def _member(kept: Kept) -> Member:
    return kept if isinstance(kept, tuple) else (kept.agent_id, kept)


def block_of(stats_id: str) -> int:
    return zlib.crc32(stats_id.encode()) % BLOCKS


class Members:
    """The counted transcripts at one publish (blocks never changed again): read on demand.

    A block's (agent id, view) pairs are made when a reader first asks and kept beside it in
    ``pairs`` (the rollup's, shared by its publishes) while the block is that same object (a
    change copies a block a snapshot holds): a reader of every transcript (a metrics scrape, a
    usage query) pays for the blocks changed since, and no pair is kept while none asks."""

    __slots__ = ("_blocks", "_pairs")

    def __init__(
        self, blocks: tuple[dict[str, Kept], ...], pairs: list[tuple[object, tuple[Member, ...]] | None]
    ) -> None:
        self._blocks = blocks
        self._pairs = pairs

    def get(self, stats_id: str) -> Kept | None:
        """What ``stats_id`` was counted as at that publish (None: it was not)."""
        return self._blocks[block_of(stats_id)].get(stats_id)

    def all(self) -> tuple[Member, ...]:
        joined: list[Member] = []
        pairs = self._pairs
        for at, block in enumerate(self._blocks):
            made = pairs[at]
            if made is None or made[0] is not block:
                made = pairs[at] = (block, tuple(map(_member, block.values())))
            joined.extend(made[1])
        return tuple(joined)


class Rollup:
    """Per-transcript buckets in, :class:`Totals` out; one writer (the store).

    A member's buckets must not change once put (a frozen ``TranscriptView``'s do not): they are
    taken out of the sums again by their values when the transcript changes or goes."""

    def __init__(self) -> None:
        self._members: list[dict[str, Kept]] = [{} for _ in range(BLOCKS)]
        self._owned: set[int] = set(range(BLOCKS))  # blocks no snapshot holds (written in place)
        self._pairs: list[tuple[object, tuple[Member, ...]] | None] = [None] * BLOCKS  # see Members
        # stats id -> the member its buckets are summed as (None: none), for ids changed since
        # the last totals
        self._pending: dict[str, Kept | None] = {}
        self._total = Sum()
        self._sums: dict[str, dict[str, Sum]] = {by: {} for by in GROUP_BY}
        self._figures: dict[str, dict[str, UsageGroup]] = {by: {} for by in GROUP_BY}
        self._total_figure = figure_of(self._total.bucket())
        self.transcripts_summed = 0  # lifetime count, for tests: a change re-adds one transcript
        self.buckets_summed = 0  # lifetime count of buckets added or taken out
        self.groups_folded = 0  # lifetime count, for tests: a change re-figures the groups it is in

    @property
    def dirty(self) -> bool:
        """Whether a change is waiting to be summed (the totals would differ)."""
        return bool(self._pending)

    def _block(self, stats_id: str) -> dict[str, Kept]:
        block = block_of(stats_id)
        members = self._members[block]
        if block not in self._owned:  # a snapshot holds this one: it stays as it was
            members = self._members[block] = dict(members)
            self._owned.add(block)
        return members

    def put(self, stats_id: str, member: Kept) -> None:
        """Count ``member`` (agent id, buckets; or a view naming its agent) for ``stats_id``; kept
        as it is."""
        members = self._block(stats_id)
        if stats_id not in self._pending:
            self._pending[stats_id] = members.get(stats_id)
        members[stats_id] = member

    def swap(self, stats_id: str, member: Kept) -> None:
        """Count ``stats_id`` as ``member``, whose buckets equal those it is counted with now (the
        same statistics held otherwise): no sum moves, nothing is pending."""
        members = self._block(stats_id)
        if stats_id in members:
            members[stats_id] = member

    def member(self, stats_id: str) -> Member | None:
        """What ``stats_id`` is counted as now, as (agent id, buckets) (None: it is not)."""
        kept = self._members[block_of(stats_id)].get(stats_id)
        return _member(kept) if kept is not None else None

    def kept(self, stats_id: str) -> Kept | None:
        """What ``stats_id`` is counted as, as it was put (None: it is not)."""
        return self._members[block_of(stats_id)].get(stats_id)

    def ids(self) -> Iterator[str]:
        """The counted stats ids (the keys as they were put)."""
        for members in self._members:
            yield from members

    def drop(self, stats_id: str) -> None:
        if stats_id not in self._members[block_of(stats_id)]:
            return
        members = self._block(stats_id)
        if stats_id not in self._pending:
            self._pending[stats_id] = members[stats_id]
        del members[stats_id]

    def members(self) -> Members:
        """Every counted transcript now; the next change to a block copies it first."""
        self._owned.clear()
        return Members(tuple(self._members), self._pairs)

    def totals(self, sessions: int, unknown_sessions: int = 0) -> Totals:
        """Totals now, over every transcript put (each once)."""
        touched: dict[str, set[str]] = {by: set() for by in GROUP_BY}
        for stats_id, summed_as in self._pending.items():
            now = self._members[block_of(stats_id)].get(stats_id)
            if now is summed_as or (now is not None and summed_as is not None and _same(now, summed_as)):
                continue  # e.g. a row read again: its transcript taken out and put back as it was
            if summed_as is not None:
                self._move(summed_as, touched, adding=False)
            if now is not None:
                self._move(now, touched, adding=True)
            self.transcripts_summed += 1
        if self._pending:
            self._pending.clear()
            self._total_figure = figure_of(self._total.bucket())
        for by, names in touched.items():
            sums, figures = self._sums[by], self._figures[by]
            for name in names:
                found = sums[name]
                if found.buckets:
                    figures[name] = figure_of(found.bucket())
                else:
                    del sums[name]
                    figures.pop(name, None)  # (none when it came and went in this change)
                self.groups_folded += 1
        built = {by: {name: figures[name] for name in sorted(figures)} for by, figures in self._figures.items()}
        return totals_of(self._total_figure, built, sessions, unknown_sessions)

    def _move(self, member: Kept, touched: dict[str, set[str]], adding: bool) -> None:
        """Add a member's buckets to (or take them out of) the total and its three groups."""
        agent, stats = _member(member)
        by_agent, by_day, by_model = self._sums["agent"], self._sums["day"], self._sums["model"]
        for (day, model), bucket in stats.buckets.items():
            recorded, computed = exact(bucket.recorded_usd), exact(bucket.computed_usd)
            for sums, name, names in (
                (by_agent, agent, touched["agent"]),
                (by_day, day, touched["day"]),
                (by_model, model, touched["model"]),
            ):
                found = sums.get(name)
                if found is None:
                    found = sums[name] = Sum()
                names.add(name)
                if adding:
                    found.add(bucket, recorded, computed)
                else:
                    found.take(bucket, recorded, computed)
            if adding:
                self._total.add(bucket, recorded, computed)
            else:
                self._total.take(bucket, recorded, computed)
            self.buckets_summed += 1


def _same(a: Kept, b: Kept) -> bool:
    """The same agent's same buckets object (a member's buckets never change once put)."""
    a, b = _member(a), _member(b)
    return a[1] is b[1] and a[0] == b[0]
