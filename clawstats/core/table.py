"""Plain-text tables for the CLI (shared with tests, so the golden output has one source)."""

from __future__ import annotations

from collections.abc import Sequence

from clawstats.core.session import SessionRow
from clawstats.core.totals import UsageGroup

SOURCE_MARK = {"snapshot": "", "transcript": " tx", "estimate": " est", "unknown": ""}
LEGEND = "context: tx = from the transcript's last call, est = estimate after a compaction"


def k(tokens: int) -> str:
    """OpenClaw's short form: 17k, 128k; one decimal below 10k; plain below 1k."""
    if tokens >= 10_000:
        return f"{tokens / 1000:.0f}k"
    if tokens >= 1_000:
        return f"{tokens / 1000:.1f}k"
    return str(tokens)


def context_cell(row: SessionRow) -> str:
    if row.archived:
        return "archived"
    window = k(row.context_window) if row.context_window else "?"
    if row.context_tokens is None:
        return f"unknown/{window} (?%)"
    return f"{k(row.context_tokens)}/{window} ({row.context_pct}%){SOURCE_MARK[row.context_source]}"


def age(now_ms: float, then_ms: float | None) -> str:
    if then_ms is None:
        return "-"
    seconds = max(0, int((now_ms - then_ms) / 1000))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


#: Control characters (C0, DEL, C1) and bidirectional overrides, shown escaped: a label from the
#: store must not move the cursor, set the window title, clear the screen or break a table row.
_UNSAFE = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))} | {
    c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
}


def terminal_safe(text: str) -> str:
    return text.translate(_UNSAFE) if not text.isprintable() else text


def _render(headers: Sequence[str], lines: list[list[str]], right: set[int]) -> str:
    lines = [[terminal_safe(cell) for cell in line] for line in lines]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)]
    out = []
    for line in [list(headers), *lines]:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def format_sessions_table(rows: Sequence[SessionRow], now_ms: float) -> str:
    headers = ("AGE", "KEY", "MODEL", "CONTEXT", "COST $", "COMPACT")
    lines = [
        [
            age(now_ms, r.updated_at_ms),
            r.key + (f" ({r.label})" if r.label else ""),
            r.model or "-",
            context_cell(r),
            "?" if r.total_cost is None else f"{r.total_cost:.4f}",
            str(r.compaction_count),
        ]
        for r in rows
    ]
    table = _render(headers, lines, right={0, 4, 5})
    if any(r.context_source in ("transcript", "estimate") and not r.archived for r in rows):
        table += "\n" + LEGEND
    return table


def format_usage_table(groups: dict[str, UsageGroup], by: str) -> str:
    headers = (by.upper(), "CALLS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "COST $")
    lines = [
        [
            name,
            str(g.calls),
            str(g.usage.input),
            str(g.usage.output),
            str(g.usage.cache_read),
            str(g.usage.cache_write),
            f"{g.cost:.4f}",
        ]
        for name, g in groups.items()
    ]
    return _render(headers, lines, right={1, 2, 3, 4, 5, 6})
