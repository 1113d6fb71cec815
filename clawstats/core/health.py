"""Health accounting: every skipped input is counted per file and per kind, and logged once.

The writer owns one :class:`HealthLog`; readers get :meth:`HealthLog.freeze` copies. Two
sorts of entries exist: *counters* (bad lines, rejected rows: cumulative, they never reset)
and *conditions* (an unreadable path, a missing table: present while they last, cleared when
the path reads again). The status is ``degraded`` while any condition holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger("clawstats")

#: Every kind of skipped input, so counters can start at 0 (Prometheus practice) and docs list them.
SKIP_KINDS = (
    "malformed",  # a transcript line or event that is not JSON (incl. invalid UTF-8, NaN)
    "wrongType",  # JSON whose used fields have the wrong type
    "badValue",  # a negative (or > 1e18) cost, token count or time: the whole line is skipped
    "oversizedLine",  # a line longer than --max-line-bytes
    "partialLine",  # an archive ending without a newline
    "corruptArchive",  # a .gz/.zst archive that does not decompress to the end
    "indexMalformed",  # sessions.json that is not JSON (half-written): the last good copy is kept
    "indexNotObject",  # sessions.json that is JSON but not an object
    "rowWrongType",  # one index row with wrong types (skipped; its transcript becomes an orphan)
    "rowMalformed",  # an SQLite entry_json that is not JSON
    "rowWithoutTranscript",  # a row whose transcript is not there (yet)
    "transcriptWithoutRow",  # a live transcript no row points at and no trace names (shown as its own row)
    "emptyEvent",  # an SQLite event with neither JSON nor zstd payload
    "corruptEvent",  # an SQLite zstd payload that does not decompress
    "notRegularFile",  # a FIFO, directory or symlink loop named like a transcript: never opened
)


@dataclass(frozen=True, slots=True)
class Health:
    status: str
    counters: dict[str, int]
    by_file: dict[str, dict[str, int]]
    conditions: dict[str, str]
    layouts: dict[str, str]
    last_scan_ms: float | None
    last_scan_s: float | None

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "reasons": [f"{path}: {reason}" for path, reason in sorted(self.conditions.items())],
            "skipped": dict(sorted(self.counters.items())),
            "skippedByFile": {path: dict(kinds) for path, kinds in sorted(self.by_file.items())},
            "layouts": dict(sorted(self.layouts.items())),
            "lastScanAt": self.last_scan_ms,
            "lastScanSeconds": self.last_scan_s,
        }


@dataclass
class HealthLog:
    counters: dict[str, int] = field(default_factory=dict)
    by_file: dict[str, dict[str, int]] = field(default_factory=dict)
    conditions: dict[str, str] = field(default_factory=dict)
    layouts: dict[str, str] = field(default_factory=dict)
    last_scan_ms: float | None = None
    last_scan_s: float | None = None

    def count(self, path: str, kind: str, detail: str = "", n: int = 1) -> None:
        """Count ``n`` skipped inputs of ``kind`` in ``path``; log the first of each pair."""
        kinds = self.by_file.setdefault(path, {})
        if kind not in kinds:
            log.warning("skipped %s in %s%s", kind, path, f" ({detail[:200]})" if detail else "")
        kinds[kind] = kinds.get(kind, 0) + n
        self.counters[kind] = self.counters.get(kind, 0) + n

    def set_condition(self, path: str, reason: str) -> None:
        if self.conditions.get(path) != reason:
            log.warning("%s: %s", path, reason)
        self.conditions[path] = reason

    def clear_condition(self, path: str) -> None:
        if self.conditions.pop(path, None) is not None:
            log.info("%s: recovered", path)

    def clear_under(self, prefix: str) -> None:
        for path in [p for p in self.conditions if p.startswith(prefix)]:
            self.clear_condition(path)

    def freeze(self) -> Health:
        return Health(
            status="degraded" if self.conditions else "ok",
            counters=dict(self.counters),
            by_file={path: dict(kinds) for path, kinds in self.by_file.items()},
            conditions=dict(self.conditions),
            layouts=dict(self.layouts),
            last_scan_ms=self.last_scan_ms,
            last_scan_s=self.last_scan_s,
        )
