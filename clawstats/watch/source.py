"""``Source``: one served row as the writer sees it before joining (key, index row, transcript)."""

from __future__ import annotations

from dataclasses import dataclass

from clawstats.core.records import IndexRow


@dataclass(frozen=True, slots=True)
class Source:
    key: str
    agent_id: str
    row: IndexRow | None
    stats_id: str | None  # transcript path (file layout) or "<db>#<sessionId>" (SQLite)
    archived: bool = False
    archived_from: str | None = None
