"""RFC 4180 CSV of session rows and usage groups, safe to open in a spreadsheet.

Numbers are written unformatted, times as ISO-8601 UTC; a text cell starting with ``=``,
``+``, ``-``, ``@`` (or tab/CR) gets a leading apostrophe so no spreadsheet evaluates it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from clawstats.core.session import SessionRow
from clawstats.core.totals import UsageGroup

SESSION_COLUMNS = (
    "key",
    "agentId",
    "sessionId",
    "kind",
    "label",
    "model",
    "contextTokens",
    "contextWindow",
    "contextPct",
    "contextSource",
    "totalCost",
    "costSource",
    "lifetimeCost",
    "inputTokens",
    "outputTokens",
    "cacheReadTokens",
    "cacheWriteTokens",
    "compactionCount",
    "updatedAt",
    "archived",
    "parentKey",
    "rootKey",
    "treeCost",
    "cronJob",
    "channel",
    "turnsToCompaction",
)
USAGE_COLUMNS = (
    "group",
    "calls",
    "inputTokens",
    "outputTokens",
    "cacheReadTokens",
    "cacheWriteTokens",
    "cost",
    "recordedCost",
    "computedCost",
    "unpricedCalls",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _write(header: Sequence[str], records: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for record in records:
        writer.writerow([safe_cell(v) for v in record])
    return out.getvalue()


def sessions_csv(rows: Iterable[SessionRow]) -> str:
    return _write(
        SESSION_COLUMNS,
        (
            (
                r.key,
                r.agent_id,
                r.session_id,
                r.kind,
                r.label,
                r.model,
                r.context_tokens,
                r.context_window,
                r.context_pct,
                r.context_source,
                "" if r.total_cost is None else repr(r.total_cost),
                r.cost_source,
                "" if r.lifetime_cost is None else repr(r.lifetime_cost),
                r.usage.input,
                r.usage.output,
                r.usage.cache_read,
                r.usage.cache_write,
                r.compaction_count,
                r.updated_at,
                r.archived,
                r.parent_key,
                r.root_key,
                "" if r.tree_cost is None else repr(r.tree_cost),
                r.cron_job,
                r.channel,
                r.turns_to_compaction,
            )
            for r in rows
        ),
    )


def usage_csv(groups: dict[str, UsageGroup], by: str) -> str:
    header = (by, *USAGE_COLUMNS[1:])
    return _write(
        header,
        (
            (
                name,
                g.calls,
                g.usage.input,
                g.usage.output,
                g.usage.cache_read,
                g.usage.cache_write,
                repr(g.cost),
                repr(g.recorded_cost),
                repr(g.computed_cost),
                g.unpriced_calls,
            )
            for name, g in groups.items()
        ),
    )
