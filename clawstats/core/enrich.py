"""The attribution and foresight fields of the served rows, filled in once per snapshot.

Joins :mod:`clawstats.core.attribution` (parentKey, treeCost, cronJob, channel) and
:mod:`clawstats.core.forecast` (contextGrowthPerTurn, turnsToCompaction) over the rows a scan
built, and turns the transcripts' per-call timelines into the calls :mod:`clawstats.core.burnrate`
needs. Pure.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol

import msgspec

from clawstats.core.attribution import ATTRIBUTION_BY, NO_GROUP, Tree, annotate, build_tree, group_name, spawn_links
from clawstats.core.figures import HasBuckets, UsageGroup, figures
from clawstats.core.forecast import CompactionConfig, TurnsLeft, forecast
from clawstats.core.session import SessionRow
from clawstats.core.transcript import Compaction
from clawstats.core.usage import Bucket


class Timeline(Protocol):
    """What a transcript view offers: per-call arrays, compactions, spawned children."""

    def timeline(self) -> tuple[array[float], array[int], array[float], array[int]]:
        """(call ms, context tokens, cumulative cost, output tokens) per call."""
        ...

    @property
    def compactions(self) -> Sequence[Compaction]: ...
    @property
    def spawned(self) -> Sequence[str]: ...
    @property
    def buckets(self) -> Mapping[tuple[str, str], Bucket]: ...


def links_of(rows: Sequence[SessionRow], views: Mapping[str, Timeline]) -> dict[str, str]:
    """``{child: parent}`` from the ``sessions_spawn`` results in every transcript (archives included)."""
    found = []
    for row in rows:
        view = views.get(row.key)
        if view is not None and view.spawned:
            found.append((row.archived_from or row.key, view.spawned))
    return spawn_links(found)


def tree_of(rows: Sequence[SessionRow], views: Mapping[str, Timeline]) -> Tree:
    return build_tree(rows, links_of(rows, views))


#: a row's forecast, kept while its transcript view (same object), window and context are unchanged
ForecastMemo = dict[str, tuple[object, int | None, int | None, int | None, TurnsLeft]]
#: Only forecasts of timelines this long are kept in the memo: a shorter one costs about what the
#: memo's own check does to compute again, and an entry (~200 bytes: a 5-tuple and its figures)
#: for every idle short session was ~4 % of the heap at 50,000 sessions.
MEMO_MIN_CALLS = 32


def enrich(
    rows: Sequence[SessionRow],
    views: Mapping[str, Timeline],
    compaction: CompactionConfig,
    memo: ForecastMemo | None = None,
) -> list[SessionRow]:
    """Rows with lineage, tree cost, cron job, channel and the compaction forecast filled in.

    ``memo`` (owned by the caller, across scans) spares re-reading the timeline of a session
    that did not change: a scan then costs the changed sessions, not every session's history.
    """
    memo = {} if memo is None else memo
    out = [foresee(row, views.get(row.key), compaction, memo) for row in annotate(rows, tree_of(rows, views))]
    for gone in memo.keys() - {row.key for row in rows}:
        del memo[gone]
    return out


def foresee(row: SessionRow, view: Timeline | None, compaction: CompactionConfig, memo: ForecastMemo) -> SessionRow:
    """The row with its compaction forecast filled in (kept in ``memo`` while its inputs are the same)."""
    if row.archived or view is None:
        reason = "archived transcript" if row.archived else "no transcript"
        memo.pop(row.key, None)
        return msgspec.structs.replace(row, turns_to_compaction_reason=reason)
    cached = memo.get(row.key)
    if cached is not None and cached[0] is view and cached[1:3] == (row.context_window, row.context_tokens):
        growth, left = cached[3], cached[4]
    else:
        growth, left, calls = forecast_of(row, view, compaction)
        if calls >= MEMO_MIN_CALLS:
            memo[row.key] = (view, row.context_window, row.context_tokens, growth, left)
        else:
            memo.pop(row.key, None)
    return msgspec.structs.replace(
        row, context_growth_per_turn=growth, turns_to_compaction=left.turns, turns_to_compaction_reason=left.reason
    )


def forecast_of(row: SessionRow, view: Timeline, compaction: CompactionConfig) -> tuple[int | None, TurnsLeft, int]:
    """(contextGrowthPerTurn, turns left, calls on the timeline) of a row that has a transcript
    and is not archived."""
    ms, ctx, _cost, out = view.timeline()
    growth, left = forecast(
        ms,
        ctx,
        out,
        [c.at_ms for c in view.compactions],
        row.context_window,
        compaction,
        context_now=row.context_tokens,
    )
    return growth, left, len(ms)


def calls_of(views: Iterable[tuple[str, Timeline]], since_ms: float = 0.0) -> Iterator[tuple[str, float, float]]:
    """(agent, call ms, call USD) of every call at or after ``since_ms``: differences of the cumulative cost.

    A transcript's calls are in file order, which is time order, so the recent ones are found by
    bisection: a scrape costs the recent calls, not the whole history.
    """
    for agent, view in views:
        times, _ctx, costs, _out = view.timeline()
        start = bisect_left(times, since_ms) if since_ms else 0
        previous = costs[start - 1] if start else 0.0
        for index in range(start, len(times)):
            if times[index]:
                yield agent, times[index], costs[index] - previous
            previous = costs[index]


def _named_transcripts(
    rows: Sequence[SessionRow],
    views: Mapping[str, Timeline],
    transcripts: Sequence[tuple[str, HasBuckets]],
    by: str,
    tree: Tree,
) -> Iterator[tuple[str, str, HasBuckets]]:
    """(group, agent, buckets) of every transcript once; one no row claims goes to ``(none)``."""
    remaining = {id(view) for _, view in transcripts}
    by_key = {row.key: row for row in rows}
    for row in rows:
        view = views.get(row.key)
        if view is not None and id(view) in remaining:
            remaining.discard(id(view))
            yield group_name(row, by, tree, by_key), row.agent_id, view
    for agent, unclaimed in transcripts:
        if id(unclaimed) in remaining:
            yield NO_GROUP, agent, unclaimed


def group_by_attribution(
    rows: Sequence[SessionRow],
    views: Mapping[str, Timeline],
    transcripts: Sequence[tuple[str, HasBuckets]],
    by: str,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, UsageGroup]:
    """Usage per top-level session (``parent``), cron job or channel; every transcript counted once."""
    if by not in ATTRIBUTION_BY:
        raise ValueError(f"by must be one of {', '.join(ATTRIBUTION_BY)}")
    named = [(name, view) for name, _, view in _named_transcripts(rows, views, transcripts, by, tree_of(rows, views))]
    # the group name stands in the "agent" place: one call of the same figures() every surface uses
    return {key[0]: group for key, group in figures(named, ("agent",), since, until).items()}
