"""The published figures: :func:`figures` turns transcripts' buckets into what every surface shows.

Rows, totals, usage groups (``/api/usage``, ``clawstats usage``), the CSV export, ``/metrics``,
the OTLP export, alerts and ``clawstats check`` all take their calls, tokens and money from
:func:`figures` (or :func:`figure_of` for one set of buckets), so one set of calls gives one
number everywhere. Money is summed per call where it is read (``Bucket``) and rounded once, here,
by :func:`money`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

import msgspec

from clawstats.core.usage import Bucket

#: Money is published rounded to 1e-10 USD: far below any price, and no float noise such as
#: 0.11704800000000001 in a CSV cell.
MONEY_DECIMALS = 10
#: What a figure can be grouped by: the transcript's agent, the call's model, the call's UTC day.
DIMENSIONS = ("agent", "model", "day")
UNDATED = "unknown"


def money(usd: float) -> float:
    """The one rounding rule for every published amount of USD."""
    return round(usd, MONEY_DECIMALS) + 0.0  # + 0.0: never publish -0.0


class HasBuckets(Protocol):
    """A transcript's (day, model) buckets: live ``TranscriptStats`` or a frozen view."""

    @property
    def buckets(self) -> Mapping[tuple[str, str], Bucket]: ...


class UsageTotals(msgspec.Struct, frozen=True, rename="camel", gc=False):
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    total: int = 0


def tokens_by_type(usage: UsageTotals) -> tuple[tuple[str, int], ...]:
    """The four token counts as (``type`` label of the metrics, count), in OpenClaw's order."""
    return (
        ("input", usage.input),
        ("output", usage.output),
        ("cache_read", usage.cache_read),
        ("cache_write", usage.cache_write),
    )


def cost_by_source(group: UsageGroup) -> tuple[tuple[str, float], ...]:
    """A group's cost apart by where it comes from, for surfaces that label it (metrics, OTLP):
    ``recorded`` always, ``computed`` once any call lacked a recorded cost. They sum to ``cost``."""
    if not group.missing_cost_entries:
        return (("recorded", group.recorded_cost),)
    return (("recorded", group.recorded_cost), ("computed", group.computed_cost))


def usage_totals(input_: int, output: int, cache_read: int, cache_write: int) -> UsageTotals:
    return UsageTotals(input_, output, cache_read, cache_write, input_ + output + cache_read + cache_write)


class UsageGroup(msgspec.Struct, frozen=True, rename="camel"):
    """Calls, tokens and money of a set of calls; ``cost`` = ``recordedCost`` + ``computedCost``."""

    cost: float
    calls: int
    usage: UsageTotals
    missing_cost_entries: int = 0
    recorded_cost: float = 0.0
    computed_cost: float = 0.0
    unpriced_calls: int = 0
    cost_source: str = "recorded"


def cost_source(bucket: Bucket) -> str:
    """``recorded`` (OpenClaw's own figures), ``computed`` (some calls priced by clawstats),
    ``partial`` (some calls could not be priced: the cost is a lower bound), ``unpriced`` (no
    call could be priced, none recorded)."""
    if not bucket.unpriced:
        return "computed" if bucket.missing else "recorded"
    return "unpriced" if bucket.unpriced == bucket.calls else "partial"


def figure_of(bucket: Bucket) -> UsageGroup:
    """The published figure of summed buckets (money rounded by :func:`money`)."""
    return UsageGroup(
        cost=money(bucket.recorded_usd + bucket.computed_usd),
        calls=bucket.calls,
        usage=UsageTotals(bucket.input, bucket.output, bucket.cache_read, bucket.cache_write, bucket.total),
        missing_cost_entries=bucket.missing,
        recorded_cost=money(bucket.recorded_usd),
        computed_cost=money(bucket.computed_usd),
        unpriced_calls=bucket.unpriced,
        cost_source=cost_source(bucket),
    )


def in_range(day: str, since: str | None, until: str | None) -> bool:
    """Whether a bucket's day is inside inclusive ``[since, until]``; an undated bucket is inside
    no range (it is only counted when no range is asked for)."""
    if since is None and until is None:
        return True
    if day == UNDATED:
        return False
    return not ((since and day < since) or (until and day > until))


def summed(
    transcripts: Iterable[tuple[str, HasBuckets]],
    by: tuple[str, ...],
    since: str | None = None,
    until: str | None = None,
) -> dict[tuple[str, ...], Bucket]:
    """Buckets summed per key (a tuple of ``DIMENSIONS`` values; ``by=()`` sums everything under ``()``).

    Each transcript is given once (the snapshot's ``transcripts``), so a transcript that several
    rows point at (an alias key) is counted once.
    """
    for name in by:
        if name not in DIMENSIONS:
            raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")
    sums: dict[tuple[str, ...], Bucket] = {} if by else {(): Bucket()}
    for agent_id, stats in transcripts:
        for (day, model), bucket in stats.buckets.items():
            if not in_range(day, since, until):
                continue
            values = {"agent": agent_id, "model": model, "day": day}
            key = tuple(values[name] for name in by)
            acc = sums.get(key)
            if acc is None:
                acc = sums[key] = Bucket()
            acc.add(bucket)
    return sums


def figures(
    transcripts: Iterable[tuple[str, HasBuckets]],
    by: tuple[str, ...],
    since: str | None = None,
    until: str | None = None,
) -> dict[tuple[str, ...], UsageGroup]:
    """The published figures per key, sorted by key: the one source of every surface's numbers."""
    return {key: figure_of(acc) for key, acc in sorted(summed(transcripts, by, since, until).items())}
