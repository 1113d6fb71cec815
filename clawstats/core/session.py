"""The served session row: :class:`SessionRow` and :func:`build_row`, its only constructor.

A row joins what OpenClaw's index says about a session key (``IndexRow``: model, window,
a snapshot of the last prompt) with what its transcript says (``TranscriptStats``: cost,
usage, compactions, the context after them). Field names are snake_case here and camelCase
on the wire through msgspec's ``rename="camel"`` (one encoder, never per handler).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache

import msgspec

from clawstats.core.catalog import Catalog
from clawstats.core.figures import UsageTotals, cost_source, money
from clawstats.core.records import SHARED_MAX, IndexRow, as_int, shared
from clawstats.core.transcript import CHARS_PER_TOKEN, TranscriptStats
from clawstats.core.usage import Bucket

__all__ = ["MessageCounts", "SessionRow", "UsageTotals", "build_row", "iso_ms", "kind_of", "percent"]


# gc=False (here and on UsageTotals): scalars and frozen structs only, never in a cycle; 16 bytes
# less per object, two of them per served row.
class MessageCounts(msgspec.Struct, frozen=True, rename="camel", gc=False):
    user: int = 0
    assistant: int = 0
    tool_calls: int = 0
    tool_results: int = 0
    errors: int = 0


class SessionRow(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True, gc=False):
    """One session key (or one archived transcript), as served by every view."""

    key: str
    model: str | None
    context_tokens: int | None
    context_pct: int | None
    total_cost: float | None  # None: unknown (no readable transcript), never shown as 0
    updated_at: str | None
    agent_id: str
    session_id: str | None
    kind: str
    context_window: int | None
    context_window_source: str | None
    context_source: str
    snapshot_stale: bool
    cost_source: str
    lifetime_cost: float | None
    missing_cost_entries: int
    usage: UsageTotals
    messages: MessageCounts
    compaction_count: int
    last_compaction_at: str | None
    updated_at_ms: float | None
    archived: bool
    label: str | None = None
    display_name: str | None = None
    channel: str | None = None
    spawned_by: str | None = None
    status: str | None = None
    archived_from: str | None = None
    parent_key: str | None = None
    root_key: str | None = None
    tree_cost: float | None = None
    cron_job: str | None = None
    context_growth_per_turn: int | None = None
    turns_to_compaction: int | None = None
    turns_to_compaction_reason: str | None = None


def kind_of(key: str) -> str:
    """direct / group / channel / subagent / cron / hook / other, from the key's shape."""
    parts = key.split(":")
    rest = parts[2:] if len(parts) >= 3 and parts[0] == "agent" else parts
    if not rest or rest == ["global"] or rest == ["unknown"]:
        return "other"
    head = rest[0]
    if head in ("subagent", "cron", "hook"):
        return head
    if "group" in rest:
        return "group"
    if "channel" in rest:
        return "channel"
    return "direct"


#: Below this many epoch ms (2096), ``ms / 1000.0`` of a whole ms is within half a microsecond
#: of the exact value: the datetime it makes has exactly that ms, so plain arithmetic gives it.
_EXACT_MS = 4_000_000_000_000
_DAY_MS = 86_400_000


@lru_cache(maxsize=4096)
def _iso_day(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400.0, UTC).strftime("%Y-%m-%d")


def iso_ms(ms: float | None) -> str | None:
    """Epoch ms as ISO-8601 UTC with millisecond precision and ``Z``."""
    if ms is None:
        return None
    if 0 <= ms < _EXACT_MS and ms == int(ms):
        # What the datetime below gives, without formatting the date of every row again (a
        # strftime per row was a tenth of building 50,000 rows); the date is one of a few.
        day, rest = divmod(int(ms), _DAY_MS)
        seconds, milli = divmod(rest, 1000)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        return f"{_iso_day(day)}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}Z"
    try:
        stamp = datetime.fromtimestamp(ms / 1000.0, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def percent(used: int, window: int) -> int:
    """OpenClaw's ``percentUsed``: JS ``Math.round`` (half up), capped at 999."""
    return min(999, math.floor(100 * used / window + 0.5))


def _qualified(provider: str | None, model: str | None) -> str | None:
    if not model:
        return None
    return shared(f"{provider}/{model}") if provider else model  # one string per model, not per row


def _figure(stats: TranscriptStats) -> tuple[float, str, int, UsageTotals]:
    """The row's part of the transcript's published figure (:func:`figure_of`'s cost, cost
    source, calls without a recorded cost and tokens), without the parts a row does not show."""
    buckets = stats.buckets
    if len(buckets) == 1:  # the common case: the bucket is the sum (and the row shares its ints)
        (bucket,) = buckets.values()
    else:
        # What ``summed([("", stats)], ())`` gives (the same additions in the same order),
        # without its grouping.
        bucket = Bucket()
        for each in buckets.values():
            bucket.add(each)
    usage = UsageTotals(bucket.input, bucket.output, bucket.cache_read, bucket.cache_write, bucket.total)
    return money(bucket.recorded_usd + bucket.computed_usd), cost_source(bucket), bucket.missing, usage


def _context(
    row: IndexRow | None, stats: TranscriptStats | None, base_prompt: int | None = None
) -> tuple[int | None, str, bool]:
    """(context tokens in use, contextSource, whether OpenClaw's own number is stale/missing).

    A context that has not had a call yet (new session, or just reset: OpenClaw 2026.9 then
    writes ``totalTokens: 0`` marked fresh) is never empty: the next prompt carries the system
    prompt, tools and bootstrap. It is served as an ``estimate``: the base prompt learnt from the
    first call of this transcript (:meth:`TranscriptStats.context`), else ``base_prompt`` (the
    agent's, learnt from its latest transcript), plus what was written since.
    """
    t_tokens, t_source = stats.context() if stats is not None else (None, "unknown")
    compacted = stats is not None and stats.compacted_after_call
    if t_tokens is None and base_prompt is not None and (stats is None or stats.last_prompt is None) and not compacted:
        t_tokens, t_source = base_prompt + (stats.chars_since_reset() // CHARS_PER_TOKEN if stats else 0), "estimate"
    if row is None:
        return t_tokens, t_source, False
    snapshot = row.totalTokens
    row_ms = row.updatedAt if isinstance(row.updatedAt, int | float) else None
    call_ms = stats.last_call_ms if stats is not None else None
    # A call newer than the row: a run is in progress and the transcript is ahead of the index.
    transcript_ahead = call_ms is not None and row_ms is not None and call_ms > row_ms
    # 0 is no context at all: OpenClaw's placeholder after a reset, never a real prompt size.
    fresh = snapshot is not None and as_int(snapshot) > 0 and row.totalTokensFresh is not False and not compacted
    if fresh and not transcript_ahead:
        return as_int(snapshot), "snapshot", False
    stale = not fresh
    if t_tokens is not None:
        return t_tokens, t_source, stale
    return None, "unknown", stale


def selected_model(row: IndexRow | None) -> str | None:
    """The model the next turn uses, as OpenClaw's own views show it: the session's override
    (``sessions.patch``, ``/model``) when set, else the model that ran last."""
    if row is None:
        return None
    if row.modelOverride:
        if row.providerOverride:
            return f"{row.providerOverride}/{row.modelOverride}"
        if "/" in row.modelOverride:
            return row.modelOverride
        return _qualified(row.modelProvider, row.modelOverride)
    return _qualified(row.modelProvider, row.model)


def _window(agent_id: str, row: IndexRow | None, model: str | None, catalog: Catalog) -> tuple[int, str]:
    """The window of ``model`` (the selected one): the row's own ``contextTokens`` belongs to it
    unless an override selects a model other than the one that ran last."""
    switched = row is not None and row.modelOverride is not None and model != _qualified(row.modelProvider, row.model)
    if switched:
        window, source = catalog.window(agent_id, model)
        if source != "default" or row is None or as_int(row.contextTokens) <= 0:
            return window, source
    if row is not None and as_int(row.contextTokens) > 0:
        return as_int(row.contextTokens), "row"
    return catalog.window(agent_id, model)


def build_row(
    key: str,
    agent_id: str,
    row: IndexRow | None,
    stats: TranscriptStats | None,
    catalog: Catalog,
    *,
    archived: bool = False,
    archived_from: str | None = None,
    earlier_cost: float = 0.0,
    base_prompt: int | None = None,
) -> SessionRow:
    """Join an index row and a transcript into the served row.

    ``earlier_cost`` is the cost of this key's archived transcripts (for ``lifetimeCost``);
    ``base_prompt`` the agent's base prompt size, for a context that has not had a call yet.
    ``model``, ``contextWindow`` and ``contextPct`` all describe the selected model.
    """
    model = selected_model(row)
    if model is None and stats is not None:
        model = stats.model
    context_tokens, context_source, stale = _context(row, stats, None if archived else base_prompt)
    window: int | None = None
    window_source: str | None = None
    if not archived:
        window, window_source = _window(agent_id, row, model, catalog)
    pct = percent(context_tokens, window) if context_tokens is not None and window else None
    cost: float | None = None
    cost_from, missing, usage = "unknown", 0, _NO_USAGE
    if stats is not None:
        cost, cost_from, missing, usage = _figure(stats)
    lifetime = money(cost + earlier_cost) if cost is not None else None
    if lifetime == cost:
        lifetime = cost  # no earlier resets (most rows): the same float object, not 24 bytes more
    updated_ms: float | None = None
    if row is not None and isinstance(row.updatedAt, int | float) and not isinstance(row.updatedAt, bool):
        updated_ms = float(row.updatedAt)
    elif stats is not None:
        updated_ms = stats.last_ms
    compactions = len(stats.compactions) if stats is not None else 0
    if row is not None:
        compactions = max(compactions, as_int(row.compactionCount))
    last_compaction = stats.compactions[-1].at_ms if stats is not None and stats.compactions else None
    session_id = row.sessionId if row is not None and row.sessionId else None
    if session_id is None and stats is not None:
        session_id = stats.session_id
    return SessionRow(
        key=key,
        model=model,
        context_tokens=None if archived else context_tokens,
        context_pct=None if archived else pct,
        total_cost=cost,
        updated_at=iso_ms(updated_ms),
        agent_id=agent_id,
        session_id=session_id,
        kind="other" if archived and archived_from is None else kind_of(archived_from or key),
        context_window=window,
        context_window_source=window_source,
        context_source="unknown" if archived else context_source,
        snapshot_stale=stale,
        cost_source=cost_from,
        lifetime_cost=lifetime,
        missing_cost_entries=missing,
        usage=usage,
        messages=_messages(stats),
        compaction_count=compactions,
        last_compaction_at=iso_ms(last_compaction),
        updated_at_ms=updated_ms,
        archived=archived,
        label=row.label if row is not None else None,
        display_name=row.displayName if row is not None else None,
        channel=(row.channel or row.lastChannel) if row is not None else None,
        spawned_by=row.spawnedBy if row is not None else None,
        parent_key=(row.spawnedBy or row.parentSessionKey) if row is not None else None,
        status=row.status if row is not None else None,
        archived_from=archived_from,
    )


#: One ``MessageCounts`` per distinct count (most short sessions have the same few: a cron run's
#: three turns): 56 bytes a row otherwise. Capped as :func:`~clawstats.core.records.shared` is.
_COUNTS: dict[tuple[int, int, int, int, int], MessageCounts] = {}
_NO_MESSAGES = MessageCounts()
_NO_USAGE = UsageTotals()  # a row without a transcript (frozen: one for all of them)


def _messages(stats: TranscriptStats | None) -> MessageCounts:
    if stats is None:
        return _NO_MESSAGES
    counts = (stats.user, stats.assistant, stats.tool_calls, stats.tool_results, stats.errors)
    found = _COUNTS.get(counts)
    if found is None:
        found = MessageCounts(*counts)
        if len(_COUNTS) < SHARED_MAX:
            _COUNTS[counts] = found
    return found
