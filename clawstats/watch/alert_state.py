"""``AlertStateFile``: the fired-alert set (the alerts' hysteresis state) persisted across
restarts, in the same SQLite file as the persisted index but in a table and connection of its own.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger("clawstats")


class AlertStateFile:
    """The fired-alert set (hysteresis state), beside the index in the same SQLite file but on a
    connection of its own: it is written from the event loop, the index from scan threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.available = True
        self._failing = False  # the last save failed (and was logged)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=2.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS alerts_fired (id TEXT PRIMARY KEY)")
        except (sqlite3.Error, OSError) as exc:
            log.warning("%s: alert state not persisted (%s)", path, exc)
            self.available = False

    def load(self) -> set[str]:
        if not self.available:
            return set()
        try:
            return {row[0] for row in self._db.execute("SELECT id FROM alerts_fired")}
        except sqlite3.Error:
            return set()

    def save(self, fired: set[str]) -> None:
        if not self.available:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute("DELETE FROM alerts_fired")
                self._db.executemany("INSERT INTO alerts_fired VALUES (?)", [(i,) for i in sorted(fired)])
        except sqlite3.Error as exc:
            if not self._failing:  # once, until a save works again (it is tried on every change)
                log.warning("%s: alert state not saved (%s)", self.path, exc)
            self._failing = True
        else:
            self._failing = False

    def close(self) -> None:
        if self.available:
            self._db.close()
