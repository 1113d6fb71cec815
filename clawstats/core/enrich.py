"""The attribution and foresight fields of the served rows, filled in once per snapshot.

Joins :mod:`clawstats.core.attribution` (parentKey, treeCost, cronJob, channel) and
:mod:`clawstats.core.forecast` (contextGrowthPerTurn, turnsToCompaction) over the rows a scan
built, and turns the transcripts' per-call timelines into the calls :mod:`clawstats.core.burnrate`
needs. Pure.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol

import msgspec

from clawstats.core.attribution import ATTRIBUTION_BY, NO_GROUP, Tree, annotate, build_tree, group_name, spawn_links
from clawstats.core.figures import HasBuckets, UsageGroup, figures
from clawstats.core.forecast import CompactionConfig, forecast
from clawstats.core.session import SessionRow
from clawstats.core.transcript import Compaction
from clawstats.core.usage import Bucket


class Timeline(Protocol):
    """What a transcript view offers: per-call arrays as bytes, compactions, spawned children."""

    @property
    def timeline_ms(self) -> bytes: ...
    @property
    def timeline_ctx(self) -> bytes: ...
    @property
    def timeline_cost(self) -> bytes: ...
    @property
    def timeline_out(self) -> bytes: ...
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


def _floats(raw: bytes) -> array[float]:
    values = array("d")
    values.frombytes(raw)
    return values


def _ints(raw: bytes) -> array[int]:
    values = array("I")
    values.frombytes(raw)
    return values


def enrich(rows: Sequence[SessionRow], views: Mapping[str, Timeline], compaction: CompactionConfig) -> list[SessionRow]:
    """Rows with lineage, tree cost, cron job, channel and the compaction forecast filled in."""
    out: list[SessionRow] = []
    for row in annotate(rows, tree_of(rows, views)):
        view = views.get(row.key)
        if row.archived or view is None:
            reason = "archived transcript" if row.archived else "no transcript"
            out.append(msgspec.structs.replace(row, turns_to_compaction_reason=reason))
            continue
        growth, left = forecast(
            _floats(view.timeline_ms),
            _ints(view.timeline_ctx),
            _ints(view.timeline_out),
            [c.at_ms for c in view.compactions],
            row.context_window,
            compaction,
            context_now=row.context_tokens,
        )
        out.append(
            msgspec.structs.replace(
                row,
                context_growth_per_turn=growth,
                turns_to_compaction=left.turns,
                turns_to_compaction_reason=left.reason,
            )
        )
    return out


def calls_of(views: Iterable[tuple[str, Timeline]]) -> Iterator[tuple[str, float, float]]:
    """(agent, call ms, call USD) of every recorded call: differences of the cumulative cost."""
    for agent, view in views:
        previous = 0.0
        for at_ms, cumulative in zip(_floats(view.timeline_ms), _floats(view.timeline_cost), strict=True):
            if at_ms:
                yield agent, at_ms, cumulative - previous
            previous = cumulative


def _named_transcripts(
    rows: Sequence[SessionRow],
    views: Mapping[str, Timeline],
    transcripts: Sequence[tuple[str, HasBuckets]],
    by: str,
    tree: Tree,
) -> Iterator[tuple[str, str, HasBuckets]]:
    """(group, agent, buckets) of every transcript once; one no row claims goes to ``(none)``."""
    remaining = {id(view) for _, view in transcripts}
    for row in rows:
        view = views.get(row.key)
        if view is not None and id(view) in remaining:
            remaining.discard(id(view))
            yield group_name(row, by, tree), row.agent_id, view
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
