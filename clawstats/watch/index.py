"""``sessions.json``: reloaded only when its identity changes; the last good copy survives.

OpenClaw replaces the file by writing ``sessions.json.<pid>.<uuid>.tmp`` and renaming it over
the old one, so a reader sees a whole old or a whole new file; (inode, size, mtime_ns)
changes with every replacement. A half-written or invalid document (a non-atomic writer, a
Windows copy) is counted and the previous rows are kept until a good one appears.
"""

from __future__ import annotations

import errno
import os
import stat

from clawstats.core.health import HealthLog
from clawstats.core.records import BadRecord, IndexRow, parse_index
from clawstats.watch.layout import NotRegularFile
from clawstats.watch.tail import FileId


class IndexFile:
    __slots__ = ("path", "rows", "file_id", "revision", "rejected", "changed")

    def __init__(self, path: str) -> None:
        self.path = path
        self.rows: dict[str, IndexRow] = {}
        self.file_id: FileId | None = None
        self.revision = 0
        self.rejected: dict[str, str] = {}
        #: the keys added, changed or removed by the last reload that changed the rows (until
        #: the agent's plan has looked at them)
        self.changed: set[str] = set()

    def poll(self, health: HealthLog) -> bool:
        """Reload when changed; True when the rows changed."""
        try:
            # Non-blocking: a FIFO named sessions.json must not stall the scanner in open().
            fh = os.fdopen(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb")
        except FileNotFoundError:
            if self.file_id is None and not self.rows:
                return False
            # Vanished: a state dir being removed, or an agent deleted. Keep nothing stale.
            self.file_id = None
            self.changed = set(self.rows)
            self.rows = {}
            self.revision += 1
            return True
        with fh:
            # fstat of the open file: its identity matches the bytes read, even mid-rename.
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise NotRegularFile(errno.EINVAL, "not a regular file", self.path)
            file_id = FileId.of(st)
            if file_id == self.file_id:
                return False
            raw = fh.read()
        try:
            rows, rejected = parse_index(raw, self.rows)
        except BadRecord as bad:
            # Keep the last good rows; try again on the next change of identity.
            health.count(self.path, bad.kind, bad.detail)
            health.set_condition(self.path, f"invalid sessions.json ({bad.kind}); serving the last good copy")
            self.file_id = file_id
            return False
        health.clear_condition(self.path)
        for key, why in rejected.items():
            if self.rejected.get(key) != why:
                health.count(self.path, "rowWrongType", f"{key}: {why}")
        self.rejected = rejected
        self.file_id = file_id
        old = self.rows
        # OpenClaw rewrites the whole file on every turn: what the plan must look at again is the
        # few rows that moved. An unchanged row is its old object (parse_index), so they are told
        # by identity.
        changed = {key for key, row in rows.items() if old.get(key) is not row}
        changed.update(key for key in old if key not in rows)
        if changed:
            self.rows, self.changed = rows, changed
            self.revision += 1
            return True
        return False
