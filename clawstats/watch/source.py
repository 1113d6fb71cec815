"""What an agent hands the store: ``Source`` (one served row before joining: key, index row,
transcript) and ``AgentScan`` (what changed in one scan)."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from clawstats.core.records import IndexRow


class Source(msgspec.Struct, frozen=True, gc=False):
    """``gc=False``: strings and an index row (itself untracked), never in a cycle: 64 bytes a
    session, not a slotted dataclass's 80 (it is tracked by the collector)."""

    key: str
    agent_id: str
    row: IndexRow | None
    stats_id: str | None  # transcript path (file layout) or "<db>#<sessionId>" (SQLite)
    archived: bool = False
    archived_from: str | None = None


@dataclass(frozen=True, slots=True)
class AgentScan:
    """Since the agent's previous scan: row keys whose :class:`Source` was added, changed or
    removed, transcripts (stats ids) whose statistics changed, appeared or vanished, and
    transcripts whose unchanged statistics were packed (idle since they were written to)."""

    keys: set[str]
    stats: set[str]
    packed: set[str] = field(default_factory=set)
