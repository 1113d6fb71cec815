"""Totals and usage groups over many transcripts (live and archived), from :func:`figures`.

Each transcript contributes its (day, model) buckets once, so totals include archives and
never count a transcript twice, however many rows point at it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from clawstats.core.figures import HasBuckets, UsageGroup, UsageTotals, figure_of, figures, summed

__all__ = [
    "GROUP_BY",
    "HasBuckets",
    "Totals",
    "UsageGroup",
    "compute_totals",
    "group_usage",
    "sum_by_agent_model",
    "totals_of",
]

GROUP_BY = ("model", "agent", "day")


class Totals(msgspec.Struct, frozen=True, rename="camel"):
    total_cost: float
    calls: int
    usage: UsageTotals
    missing_cost_entries: int
    sessions: int
    by_agent: dict[str, UsageGroup]
    by_model: dict[str, UsageGroup]
    by_day: dict[str, UsageGroup]
    recorded_cost: float = 0.0
    computed_cost: float = 0.0
    unpriced_calls: int = 0
    cost_source: str = "recorded"
    #: rows whose cost is unknown (``totalCost`` null: no readable transcript); the total is then a lower bound
    unknown_sessions: int = 0


def group_usage(
    transcripts: Iterable[tuple[str, HasBuckets]],
    by: str,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, UsageGroup]:
    """Usage and cost per model, agent or UTC day; ``since``/``until`` are inclusive days."""
    if by not in GROUP_BY:
        raise ValueError(f"by must be one of {', '.join(GROUP_BY)}")
    return {key[0]: group for key, group in figures(transcripts, (by,), since, until).items()}


def sum_by_agent_model(transcripts: Iterable[tuple[str, HasBuckets]]) -> dict[tuple[str, str], UsageGroup]:
    """Figures per (agent, model): what the metric exporters publish."""
    return {(key[0], key[1]): group for key, group in figures(transcripts, ("agent", "model")).items()}


def compute_totals(transcripts: Iterable[tuple[str, HasBuckets]], sessions: int, unknown_sessions: int = 0) -> Totals:
    """Totals over every transcript (each once) and its three groupings."""
    transcripts = list(transcripts)
    total = figure_of(summed(transcripts, ())[()])
    groups = {by: group_usage(transcripts, by) for by in GROUP_BY}
    return totals_of(total, groups, sessions, unknown_sessions)


def totals_of(
    total: UsageGroup, groups: Mapping[str, dict[str, UsageGroup]], sessions: int, unknown_sessions: int
) -> Totals:
    """The totals from the figure over everything and its groupings by agent, model and day (the
    one constructor: :func:`compute_totals` and the incremental ``Rollup`` both end here)."""
    return Totals(
        total_cost=total.cost,
        calls=total.calls,
        usage=total.usage,
        missing_cost_entries=total.missing_cost_entries,
        sessions=sessions,
        by_agent=groups["agent"],
        by_model=groups["model"],
        by_day=groups["day"],
        recorded_cost=total.recorded_cost,
        computed_cost=total.computed_cost,
        unpriced_calls=total.unpriced_calls,
        cost_source="partial" if unknown_sessions and total.cost_source != "unpriced" else total.cost_source,
        unknown_sessions=unknown_sessions,
    )
