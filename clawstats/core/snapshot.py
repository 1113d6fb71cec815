"""Immutable views handed from the single writer to every reader (CLI, HTTP, metrics).

The writer mutates ``TranscriptStats``; readers only ever see :class:`Snapshot` objects built
from frozen copies (:class:`TranscriptView`), so no locks are needed and a request is always
answered from one consistent scan. Its rows in order and its transcripts are made on the first
read (:class:`Lazy`) from parts the writer never changes again, so a publish copies neither.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Mapping, Set
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import msgspec

from clawstats.core.attribution import ATTRIBUTION_BY
from clawstats.core.burnrate import DAY_MS, BurnRate, burn_rate
from clawstats.core.catalog import Catalog
from clawstats.core.enrich import calls_of, group_by_attribution, tree_of
from clawstats.core.health import Health
from clawstats.core.peek import buckets_of, shape_of
from clawstats.core.rollup import Members
from clawstats.core.session import SessionRow, iso_ms
from clawstats.core.totals import Totals, UsageGroup, group_usage
from clawstats.core.transcript import Compaction, TranscriptStats
from clawstats.core.usage import Bucket

T = TypeVar("T")

#: the burn rate looks back at most a day (the last 24 h; today is within it)
BURN_HORIZON_MS = DAY_MS
#: the burn rate slides with the clock: recomputed at most this often
BURN_REFRESH_MS = 60_000.0


class TimelineSource(Protocol):
    """Where a view reads its calls: the transcript's tail (its statistics, packed or not)."""

    def timeline_at(self, generation: int, calls: int) -> tuple[array[float], array[int], array[float], array[int]]:
        """The first ``calls`` calls of the statistics of ``generation`` (none of another)."""
        ...


_NO_PARTS: tuple[tuple[Compaction, ...], tuple[str, ...]] = ((), ())


def view_parts(
    compactions: tuple[Compaction, ...], spawned: tuple[str, ...]
) -> tuple[tuple[Compaction, ...], tuple[str, ...]]:
    """A view's ``parts``: the shared pair when there are neither compactions nor children."""
    return (compactions, spawned) if compactions or spawned else _NO_PARTS


class TranscriptView(msgspec.Struct, frozen=True, gc=False):
    """A frozen copy of what totals and the detail view need from one transcript.

    The per-call timelines are not copied: they only ever grow (a replaced file gets new
    statistics, of a new ``generation``), so the view keeps where to read them (the tail: it
    does not hold the statistics, which an idle transcript keeps packed) and how many points it
    covers, and :meth:`timeline` reads that prefix on demand (a detail request, an OTLP export).
    Nor are the buckets: the transcript copies them before its next call changes one
    (:meth:`TranscriptStats.share_buckets`), so a live transcript's view costs no copy; and a
    packed (idle) transcript's view keeps its dump (the tail's own bytes object, never changed:
    a change unpacks into new statistics) and reads its buckets from it on demand
    (:attr:`buckets`): ~410 bytes less per idle session, the price a decode per reader of every
    transcript's buckets (a usage query, a metrics scrape; the totals read a view's buckets
    only when its transcript changes). ``gc=False``: it is in no cycle (its tail never refers to
    a view), so 16 bytes less each and never walked by the collector.
    """

    agent_id: str
    held: Mapping[tuple[str, str], Bucket] | bytes  # the buckets, or the dump they are read from
    #: (compactions, spawned child session keys): one shared pair for the transcripts with neither
    #: (nearly all), so 6 fields, 64 bytes a view (7 were 80 with the allocator's rounding)
    parts: tuple[tuple[Compaction, ...], tuple[str, ...]]
    source: TimelineSource
    points: int
    generation: int = 0  # of the statistics in ``source`` this view was made of

    @classmethod
    def of(
        cls, agent_id: str, stats: TranscriptStats, source: TimelineSource | None = None, generation: int = 0
    ) -> TranscriptView:
        """The view of ``stats``, their timeline read from ``source`` (default: ``stats``)."""
        parts = view_parts(tuple(stats.compactions), tuple(stats.spawned))
        return cls(
            agent_id, stats.share_buckets(), parts, source if source is not None else stats, stats.calls, generation
        )

    @classmethod
    def packed(cls, agent_id: str, blob: bytes, source: TimelineSource, generation: int = 0) -> TranscriptView:
        """The view of the statistics dumped in ``blob`` (kept as is, the buckets not decoded)."""
        shape = shape_of(blob)
        return cls(agent_id, blob, view_parts(shape.compactions, shape.spawned), source, shape.calls, generation)

    @property
    def compactions(self) -> tuple[Compaction, ...]:
        return self.parts[0]

    @property
    def spawned(self) -> tuple[str, ...]:
        """Child session keys this transcript spawned."""
        return self.parts[1]

    @property
    def buckets(self) -> Mapping[tuple[str, str], Bucket]:
        """(day, model) -> bucket; of a packed view, decoded anew on each read (not kept)."""
        held = self.held
        return buckets_of(held) if isinstance(held, bytes) else held

    def timeline(self) -> tuple[array[float], array[int], array[float], array[int]]:
        """(call ms, context tokens, cumulative cost, output tokens) of the first ``points`` calls."""
        return self.source.timeline_at(self.generation, self.points)


class CompactionInfo(msgspec.Struct, frozen=True, rename="camel"):
    at: str | None
    tokens_before: int | None
    tokens_after: int | None
    estimated_tokens_after: int | None
    from_hook: bool


class TimelinePoint(msgspec.Struct, frozen=True, rename="camel"):
    at: str | None
    context_tokens: int
    cumulative_cost: float


class ChildCost(msgspec.Struct, frozen=True, rename="camel"):
    """A direct child in the lineage tree: a sub-agent (live or cleaned up) or an archive of the key."""

    key: str
    tree_cost: float
    has_row: bool


class SessionDetail(msgspec.Struct, frozen=True, rename="camel"):
    row: SessionRow
    by_model: dict[str, UsageGroup]
    compactions: list[CompactionInfo]
    timeline: list[TimelinePoint]
    children: list[ChildCost] = []


#: An agent's usual stats id of a session: ``prefix + session id + suffix`` (a file agent's
#: ``<sessions dir>/<id>.jsonl``, a SQLite agent's ``<agentId>/<id>``).
Shape = tuple[str, str]


class ViewsByRow(Mapping[str, TranscriptView]):
    """Each row's transcript view at one publish, by row key, read through what the snapshot
    holds anyway: its rows (``rows``, frozen) and the transcripts counted at that publish
    (``counted``, frozen; a transcript a row reads is counted). A row's stats id is the usual
    one of its agent and session id (``shapes``) unless ``unusual`` names it (an archive, a
    topic transcript, a ``sessionFile`` elsewhere; None: it reads none). No map of every row
    (~37 bytes a row at 50,000 rows beside ``by_key``'s); a lookup costs a hash of the stats id.
    """

    __slots__ = ("_rows", "_counted", "_shapes", "_unusual")

    def __init__(
        self,
        rows: Mapping[str, SessionRow],
        counted: Members,
        shapes: Mapping[str, Shape],
        unusual: Mapping[str, str | None],
    ) -> None:
        self._rows = rows
        self._counted = counted
        self._shapes = shapes
        self._unusual = unusual

    def __getitem__(self, key: str) -> TranscriptView:
        view = self.get(key)
        if view is None:
            raise KeyError(key)
        return view

    def get(self, key: str, default: TranscriptView | None = None) -> TranscriptView | None:  # type: ignore[override]
        # (no KeyError raised and caught per row: a walk of every row's view, the lineage tree of
        # a detail request)
        found = self.stats_id(key)
        view = self._counted.get(found) if found is not None else None
        return view if isinstance(view, TranscriptView) else default

    def stats_id(self, key: str) -> str | None:
        """The stats id of the transcript the row ``key`` reads (None: none, or no such row)."""
        found = self._unusual.get(key, "")
        if found is None or found:
            return found
        row = self._rows.get(key)
        return usual_stats_id(self._shapes, row.agent_id, row.session_id) if row is not None else None

    def __iter__(self) -> Iterator[str]:
        return (key for key in self._rows if key in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def usual_stats_id(shapes: Mapping[str, Shape], agent_id: str, session_id: str | None) -> str | None:
    """The stats id a row of this agent and session id usually reads (None: no shape, no id)."""
    shape = shapes.get(agent_id)
    if shape is None or not session_id:
        return None
    return shape[0] + session_id + shape[1]


def changed_keys(changed: Set[str], by_key: Mapping[str, SessionRow]) -> Set[str]:
    """What a snapshot names as changed: ``changed`` frozen, or, when it is every row (a cold
    start: a set of 50,000 keys, ~40 bytes a session kept until the next change), the keys of the
    snapshot's own ``by_key``, which hold the same and cost nothing more."""
    if len(changed) == len(by_key) and all(key in by_key for key in changed):
        return by_key.keys()
    return frozenset(changed)


class Lazy(Generic[T]):
    """A tuple made on first read from parts that never change (then kept): a publish copies no
    row and no transcript; the reader that asks pays once per snapshot."""

    __slots__ = ("_make", "_made")

    def __init__(self, make: Callable[[], tuple[T, ...]]) -> None:
        self._make = make
        self._made: tuple[T, ...] | None = None

    @property
    def made(self) -> bool:
        return self._made is not None

    def get(self) -> tuple[T, ...]:
        made = self._made
        if made is None:  # two readers at once both make it: the same tuple, one kept
            made = self._made = self._make()
        return made


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    generated_ms: float
    state_dir: str
    ordered: Lazy[SessionRow]  # :attr:`rows`, made on first read
    by_key: Mapping[str, SessionRow]
    views: Mapping[str, TranscriptView]  # by row key
    counted: Lazy[tuple[str, TranscriptView]]  # :attr:`transcripts`, made on first read
    totals: Totals
    health: Health
    catalog: Catalog
    #: burn rates by (minute, budget): filled by :meth:`burn`, the one mutable part (a cache)
    burn_cache: dict[tuple[float, float | None], tuple[BurnRate, dict[str, BurnRate]]] = field(
        default_factory=dict, compare=False, repr=False
    )
    #: Row keys changed or added / removed since the previous revision (the event stream's delta);
    #: every row's (a cold start) is the keys of :attr:`by_key` (:func:`changed_keys`).
    changed: Set[str] = frozenset()
    removed: frozenset[str] = frozenset()

    @property
    def rows(self) -> tuple[SessionRow, ...]:
        """Every row, newest first (``updated`` descending, ties by key descending)."""
        return self.ordered.get()

    @property
    def transcripts(self) -> tuple[tuple[str, TranscriptView], ...]:
        """Every transcript some row reads, once: (agent, view)."""
        return self.counted.get()

    def detail(self, key: str) -> SessionDetail | None:
        row = self.by_key.get(key)
        if row is None:
            return None
        view = self.views.get(key)
        if view is None:
            return SessionDetail(row, {}, [], [])
        ms, ctx, cost, _out = view.timeline()
        timeline = [
            TimelinePoint(iso_ms(at or None), tokens, spent) for at, tokens, spent in zip(ms, ctx, cost, strict=True)
        ]
        compactions = [
            CompactionInfo(iso_ms(c.at_ms), c.tokens_before, c.tokens_after, c.estimate, c.from_hook)
            for c in view.compactions
        ]
        by_model = group_usage([(view.agent_id, view)], "model")
        return SessionDetail(row, by_model, compactions, timeline, self._children(key))

    def _children(self, key: str) -> list[ChildCost]:
        tree = tree_of(self.rows, self.views)
        return [
            ChildCost(child, tree.tree_cost.get(child, 0.0), child in self.by_key)
            for child in sorted(tree.children.get(key, []))
        ]

    def usage(self, by: str, since: str | None = None, until: str | None = None) -> dict[str, UsageGroup]:
        if by in ATTRIBUTION_BY:
            return group_by_attribution(self.rows, self.views, self.transcripts, by, since, until)
        return group_usage(self.transcripts, by, since, until)

    def active_rows(self, active_minutes: float, now_ms: float) -> list[SessionRow]:
        """Current (not archived) rows updated within ``active_minutes`` of ``now_ms``: the
        per-session series of ``/metrics`` and OTLP (``--metrics-active-minutes``), one rule."""
        since_ms = now_ms - active_minutes * 60_000
        return [r for r in self.rows if not r.archived and (r.updated_at_ms or 0.0) >= since_ms]

    def burn(self, now_ms: float, daily_budget_usd: float | None = None) -> tuple[BurnRate, dict[str, BurnRate]]:
        """The burn rate over all agents and per agent (per-agent figures carry no budget).

        Computed at most once a minute per snapshot (``/api/usage`` and every ``/metrics`` scrape
        share it): it reads every call of the last 24 h.
        """
        key = (now_ms // BURN_REFRESH_MS, daily_budget_usd)
        cached = self.burn_cache.get(key)
        if cached is None:
            if len(self.burn_cache) > 4:
                self.burn_cache.clear()
            cached = self.burn_cache[key] = self._burn(now_ms, daily_budget_usd)
        return cached

    def _burn(self, now_ms: float, daily_budget_usd: float | None) -> tuple[BurnRate, dict[str, BurnRate]]:
        per_agent: dict[str, list[tuple[float, float]]] = {}
        for agent, at_ms, usd in calls_of(self.transcripts, since_ms=now_ms - BURN_HORIZON_MS):
            per_agent.setdefault(agent, []).append((at_ms, usd))
        everything = [call for calls in per_agent.values() for call in calls]
        overall = burn_rate(everything, now_ms, daily_budget_usd)
        return overall, {agent: burn_rate(calls, now_ms) for agent, calls in sorted(per_agent.items())}
