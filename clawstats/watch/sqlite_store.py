"""SQLite store of OpenClaw >= 2026.8 (``agents/<id>/agent/openclaw-agent.sqlite``)."""

from __future__ import annotations

from clawstats.core.health import HealthLog
from clawstats.core.transcript import TranscriptStats
from clawstats.watch.layout import AgentSource
from clawstats.watch.source import Source


class SqliteAgent:
    def __init__(self, source: AgentSource, health: HealthLog) -> None:
        self.source = source
        self.health = health

    def scan(self, stats_of: dict[str, tuple[int, TranscriptStats]]) -> list[Source]:
        self.health.set_condition(self.source.store, "SQLite layout not read yet")
        return []
