"""The served session row: :class:`SessionRow` and :func:`build_row`, its only constructor.

A row joins what OpenClaw's index says about a session key (``IndexRow``: model, window,
a snapshot of the last prompt) with what its transcript says (``TranscriptStats``: cost,
usage, compactions, the context after them). Field names are snake_case here and camelCase
on the wire through msgspec's ``rename="camel"`` (one encoder, never per handler).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import msgspec

from clawstats.core.catalog import Catalog
from clawstats.core.records import IndexRow, as_int
from clawstats.core.transcript import (
    B_CR,
    B_CW,
    B_IN,
    B_MISSING,
    B_OUT,
    B_UCR,
    B_UCW,
    B_UIN,
    B_UOUT,
    TranscriptStats,
)


class UsageTotals(msgspec.Struct, frozen=True, rename="camel"):
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    total: int = 0


class MessageCounts(msgspec.Struct, frozen=True, rename="camel"):
    user: int = 0
    assistant: int = 0
    tool_calls: int = 0
    tool_results: int = 0
    errors: int = 0


class SessionRow(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """One session key (or one archived transcript), as served by every view."""

    key: str
    model: str | None
    context_tokens: int | None
    context_pct: int | None
    total_cost: float
    updated_at: str | None
    agent_id: str
    session_id: str | None
    kind: str
    context_window: int | None
    context_window_source: str | None
    context_source: str
    snapshot_stale: bool
    cost_source: str
    lifetime_cost: float
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


def usage_totals(input_: int, output: int, cache_read: int, cache_write: int) -> UsageTotals:
    return UsageTotals(input_, output, cache_read, cache_write, input_ + output + cache_read + cache_write)


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


def iso_ms(ms: float | None) -> str | None:
    """Epoch ms as ISO-8601 UTC with millisecond precision and ``Z``."""
    if ms is None:
        return None
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
    return f"{provider}/{model}" if provider else model


def computed_cost(stats: TranscriptStats, agent_id: str, catalog: Catalog) -> tuple[float, int, int]:
    """(USD of calls without a recorded cost, calls priced, calls left unpriced)."""
    extra, priced, unpriced = 0.0, 0, 0
    for (_day, model), bucket in stats.buckets.items():
        if not bucket[B_MISSING]:
            continue
        tokens = (int(bucket[B_UIN]), int(bucket[B_UOUT]), int(bucket[B_UCR]), int(bucket[B_UCW]))
        usd = catalog.price(agent_id, model, tokens)
        if usd is None:
            unpriced += int(bucket[B_MISSING])
        else:
            extra += usd
            priced += int(bucket[B_MISSING])
    return extra, priced, unpriced


def usage_of(stats: TranscriptStats | None) -> UsageTotals:
    if stats is None:
        return UsageTotals()
    sums = [0, 0, 0, 0]
    for bucket in stats.buckets.values():
        sums[0] += int(bucket[B_IN])
        sums[1] += int(bucket[B_OUT])
        sums[2] += int(bucket[B_CR])
        sums[3] += int(bucket[B_CW])
    return usage_totals(*sums)


def cost_of(stats: TranscriptStats | None, agent_id: str, catalog: Catalog) -> tuple[float, str, int]:
    """(total USD, costSource, missing-cost calls) of one transcript."""
    if stats is None:
        return 0.0, "unknown", 0
    extra, priced, unpriced = computed_cost(stats, agent_id, catalog)
    if unpriced:
        return stats.cost + extra, "partial", priced + unpriced
    if priced:
        return stats.cost + extra, "computed", priced
    return stats.cost, "recorded", 0


def _context(row: IndexRow | None, stats: TranscriptStats | None) -> tuple[int | None, str, bool]:
    """(context tokens in use, contextSource, whether OpenClaw's own number is stale/missing)."""
    t_tokens, t_source = stats.context() if stats is not None else (None, "unknown")
    compacted = stats is not None and stats.compacted_after_call
    if row is None:
        return t_tokens, t_source, False
    snapshot = row.totalTokens
    row_ms = row.updatedAt if isinstance(row.updatedAt, int | float) else None
    call_ms = stats.last_call_ms if stats is not None else None
    # A call newer than the row: a run is in progress and the transcript is ahead of the index.
    transcript_ahead = call_ms is not None and row_ms is not None and call_ms > row_ms
    fresh = snapshot is not None and row.totalTokensFresh is not False and not compacted
    if fresh and not transcript_ahead:
        return as_int(snapshot), "snapshot", False
    stale = not fresh
    if t_tokens is not None:
        return t_tokens, t_source, stale
    return None, "unknown", stale


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
) -> SessionRow:
    """Join an index row and a transcript into the served row.

    ``earlier_cost`` is the cost of this key's archived transcripts (for ``lifetimeCost``).
    """
    model = _qualified(row.modelProvider, row.model) if row is not None else None
    if model is None and stats is not None:
        model = stats.model
    context_tokens, context_source, stale = _context(row, stats)
    window: int | None = None
    window_source: str | None = None
    if not archived:
        if row is not None and as_int(row.contextTokens) > 0:
            window, window_source = as_int(row.contextTokens), "row"
        else:
            window_model = model
            if row is not None and row.model is None and row.modelOverride:
                window_model = _qualified(row.providerOverride, row.modelOverride)
            window, window_source = catalog.window(agent_id, window_model)
    pct = percent(context_tokens, window) if context_tokens is not None and window else None
    cost, cost_source, missing = cost_of(stats, agent_id, catalog)
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
        cost_source=cost_source,
        lifetime_cost=cost + earlier_cost,
        missing_cost_entries=missing,
        usage=usage_of(stats),
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


def _messages(stats: TranscriptStats | None) -> MessageCounts:
    if stats is None:
        return MessageCounts()
    return MessageCounts(stats.user, stats.assistant, stats.tool_calls, stats.tool_results, stats.errors)
