"""Immutable views handed from the single writer to every reader (CLI, HTTP, metrics).

The writer mutates ``TranscriptStats``; readers only ever see :class:`Snapshot` objects built
from frozen copies (:class:`TranscriptView`), so no locks are needed and a request is always
answered from one consistent scan.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from clawstats.core.catalog import Catalog
from clawstats.core.health import Health
from clawstats.core.session import SessionRow, iso_ms
from clawstats.core.totals import Totals, UsageGroup, group_usage
from clawstats.core.transcript import Compaction, TranscriptStats
from clawstats.core.usage import Bucket


@dataclass(frozen=True, slots=True)
class TranscriptView:
    """A frozen copy of what totals and the detail view need from one transcript.

    The per-call timelines are not copied: they only ever grow (a replaced file gets a new
    ``TranscriptStats``), so the view keeps a reference and how many points it covers, and
    :meth:`timeline` reads that prefix on demand (a detail request, an OTLP export).
    """

    agent_id: str
    buckets: Mapping[tuple[str, str], Bucket]
    compactions: tuple[Compaction, ...]
    stats: TranscriptStats
    points: int

    @classmethod
    def of(cls, agent_id: str, stats: TranscriptStats) -> TranscriptView:
        return cls(
            agent_id=agent_id,
            buckets={key: bucket.copy() for key, bucket in stats.buckets.items()},
            compactions=tuple(stats.compactions),
            stats=stats,
            points=len(stats.tl_ms),
        )

    def timeline(self) -> tuple[array[float], array[int], array[float], array[int]]:
        """(call ms, context tokens, cumulative cost, output tokens) of the first ``points`` calls."""
        n, stats = self.points, self.stats
        return stats.tl_ms[:n], stats.tl_ctx[:n], stats.tl_cost[:n], stats.tl_out[:n]


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


class SessionDetail(msgspec.Struct, frozen=True, rename="camel"):
    row: SessionRow
    by_model: dict[str, UsageGroup]
    compactions: list[CompactionInfo]
    timeline: list[TimelinePoint]


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    generated_ms: float
    state_dir: str
    rows: tuple[SessionRow, ...]
    by_key: Mapping[str, SessionRow]
    views: Mapping[str, TranscriptView]  # by row key
    transcripts: tuple[tuple[str, TranscriptView], ...]  # every transcript once: (agent, view)
    totals: Totals
    health: Health
    catalog: Catalog
    #: Row keys changed or added / removed since the previous revision (the event stream's delta).
    changed: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()

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
        return SessionDetail(row, by_model, compactions, timeline)

    def usage(self, by: str, since: str | None = None, until: str | None = None) -> dict[str, UsageGroup]:
        return group_usage(self.transcripts, by, since, until)
