"""Totals and usage groups over many transcripts (live and archived), from their buckets.

Each transcript contributes its (day, model) buckets once, so totals include archives and
never count a transcript twice, however many rows point at it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import msgspec

from clawstats.core.catalog import Catalog
from clawstats.core.session import UsageTotals, usage_totals
from clawstats.core.usage import Bucket

GROUP_BY = ("model", "agent", "day")


class HasBuckets(Protocol):
    """A transcript's (day, model) buckets: live ``TranscriptStats`` or a frozen view."""

    @property
    def buckets(self) -> Mapping[tuple[str, str], Bucket]: ...


class UsageGroup(msgspec.Struct, frozen=True, rename="camel"):
    cost: float
    calls: int
    usage: UsageTotals
    missing_cost_entries: int = 0


class Totals(msgspec.Struct, frozen=True, rename="camel"):
    total_cost: float
    calls: int
    usage: UsageTotals
    missing_cost_entries: int
    sessions: int
    by_agent: dict[str, UsageGroup]
    by_model: dict[str, UsageGroup]
    by_day: dict[str, UsageGroup]


def _group(acc: Bucket, extra_cost: float) -> UsageGroup:
    return UsageGroup(
        cost=acc.recorded_usd + extra_cost,
        calls=acc.calls,
        usage=usage_totals(acc.input, acc.output, acc.cache_read, acc.cache_write),
        missing_cost_entries=acc.missing,
    )


def group_usage(
    transcripts: Iterable[tuple[str, HasBuckets]],
    catalog: Catalog,
    by: str,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, UsageGroup]:
    """Usage and cost per model, agent or UTC day; ``since``/``until`` are inclusive days."""
    if by not in GROUP_BY:
        raise ValueError(f"by must be one of {', '.join(GROUP_BY)}")
    return _group_many(transcripts, catalog, (by,), since, until)[by]


def _group_many(
    transcripts: Iterable[tuple[str, HasBuckets]],
    catalog: Catalog,
    bys: tuple[str, ...],
    since: str | None = None,
    until: str | None = None,
) -> dict[str, dict[str, UsageGroup]]:
    """Several groupings in one pass over the buckets (each missing-cost bucket priced once)."""
    sums: dict[str, dict[str, Bucket]] = {by: {} for by in bys}
    extra: dict[str, dict[str, float]] = {by: {} for by in bys}
    for agent_id, stats in transcripts:
        for (day, model), bucket in stats.buckets.items():
            if (since and day < since) or (until and day > until):
                continue
            priced = 0.0
            if bucket.missing:
                priced = catalog.price(agent_id, model, bucket.missing_tokens) or 0.0
            for by in bys:
                name = model if by == "model" else agent_id if by == "agent" else day
                acc = sums[by].get(name)
                if acc is None:
                    acc = sums[by][name] = Bucket()
                acc.add(bucket)
                if bucket.missing:
                    extra[by][name] = extra[by].get(name, 0.0) + priced
    return {by: {name: _group(acc, extra[by].get(name, 0.0)) for name, acc in sorted(sums[by].items())} for by in bys}


def sum_by_agent_model(transcripts: Iterable[tuple[str, HasBuckets]]) -> dict[tuple[str, str], Bucket]:
    """Buckets summed per (agent, model): what the metric exporters publish."""
    sums: dict[tuple[str, str], Bucket] = {}
    for agent, view in transcripts:
        for (_day, model), bucket in view.buckets.items():
            acc = sums.get((agent, model))
            if acc is None:
                acc = sums[(agent, model)] = Bucket()
            acc.add(bucket)
    return sums


def compute_totals(
    transcripts: Sequence[tuple[str, HasBuckets]],
    catalog: Catalog,
    total_cost: float,
    sessions: int,
) -> Totals:
    """Totals over every transcript; ``total_cost`` is the rows' cost summed in row order."""
    groups = _group_many(transcripts, catalog, GROUP_BY)
    by_agent = groups["agent"]
    usage = [0, 0, 0, 0]
    calls = missing = 0
    for group in by_agent.values():
        usage[0] += group.usage.input
        usage[1] += group.usage.output
        usage[2] += group.usage.cache_read
        usage[3] += group.usage.cache_write
        calls += group.calls
        missing += group.missing_cost_entries
    return Totals(
        total_cost=total_cost,
        calls=calls,
        usage=usage_totals(*usage),
        missing_cost_entries=missing,
        sessions=sessions,
        by_agent=by_agent,
        by_model=groups["model"],
        by_day=groups["day"],
    )
