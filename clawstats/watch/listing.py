"""``Listing``: the transcripts in one sessions directory, listed again only when they may have
changed.

It keeps their paths, each mapped to itself: the one string of each path that the plan, its
tails and the joins share (looked up by an equal string, a dict hands back its own object; a set
of names kept a name beside each path: ~120 bytes a session). A listing that finds a path already
listed keeps that path's object.

The directory's mtime says when a name came or went; one too recent to trust (a file created in
the same timestamp tick leaves it unchanged) is listed again on every look. OpenClaw replaces
``sessions.json`` by a rename after every turn, which moves the mtime too: when the file-system
events name no transcript the listing lacks, it stands (17 ms of a 33 ms turn at 50,000
sessions), the mtime unrecorded, and is taken again within ``RELIST_S`` all the same (an event the
kernel dropped), at once when an event names a new transcript or a read finds a listed one gone
(``relist``), and on every safety scan (no events). Names that are not regular files (a FIFO, a
directory, a symlink loop) are never opened: counted, and a condition while they are there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from clawstats.core.health import HealthLog
from clawstats.watch.layout import list_regular
from clawstats.watch.locate import is_transcript_name

#: A directory listing is trusted for reuse only once its mtime is this old.
RACY_S = 2.0
#: A directory change the file-system events explain (sessions.json replaced) is listed again at
#: most this much later all the same.
RELIST_S = 10.0


class Listing:
    """One sessions directory's transcripts (``paths``: None until first listed)."""

    def __init__(self, sessions_dir: str, health: HealthLog, note: Callable[[str, str, str], None]) -> None:
        self.sessions_dir = sessions_dir
        self.health = health
        self._note = note  # counts a finding once: (subject, kind, path)
        self.paths: dict[str, str] | None = None  # path -> that same path object
        self.relist = False  # a listed transcript was found gone: list again at the next look
        self.listings = 0  # lifetime count of listings (a test pins a rewrite's work)
        self._dir_mtime_ns = -2
        self._listed_at = 0.0  # monotonic time of the last listing
        self._irregular: set[str] = set()  # non-regular paths named like transcripts

    def refresh(self, hint: set[str] | None = None) -> bool:
        """List again when the names may have changed (the module docstring says when); True
        when they did. ``hint``: the paths file-system events named, None for the safety scan."""
        try:
            mtime_ns = os.stat(self.sessions_dir).st_mtime_ns
        except OSError:
            mtime_ns = -1
        racy = time.time_ns() - mtime_ns <= RACY_S * 1e9
        if mtime_ns == self._dir_mtime_ns and not racy and self.paths is not None and not self.relist:
            return False
        now = time.monotonic()
        if self._explained(hint) and now - self._listed_at < RELIST_S:
            return False
        self._dir_mtime_ns = mtime_ns
        self._listed_at, self.relist = now, False
        self.listings += 1
        kept = self.paths or {}
        here = os.path.join(self.sessions_dir, "")
        paths: dict[str, str] = {}
        for name in self._list():
            if is_transcript_name(name):
                path = here + name
                path = kept.get(path, path)  # the object the tails and joins already hold
                paths[path] = path
        if self.paths is not None and paths.keys() == self.paths.keys():
            return False  # e.g. sessions.json replaced by rename: no transcript came or went
        self.paths = paths
        return True

    @property
    def irregular(self) -> set[str]:
        """Paths named like transcripts that are not regular files (a condition each)."""
        return self._irregular

    def _explained(self, hint: set[str] | None) -> bool:
        """Whether the events in ``hint`` name no transcript the last listing lacks (the safety
        scan, None, explains nothing)."""
        paths = self.paths
        if hint is None or paths is None or self.relist:
            return False
        here = os.path.join(self.sessions_dir, "")
        for path in hint:
            if path.startswith(here) and path not in paths:
                name = path[len(here) :]
                if os.sep not in name and is_transcript_name(name):
                    return False
        return True

    def _list(self) -> list[str]:
        health, sessions_dir = self.health, self.sessions_dir
        try:
            names, others = list_regular(sessions_dir)
            self._irregular_files(others)
            health.clear_condition(sessions_dir)
        except FileNotFoundError:
            names = []
            health.clear_condition(sessions_dir)
        except OSError as exc:
            names = []
            health.set_condition(sessions_dir, f"cannot list: {exc.strerror or exc}")
        return names

    def _irregular_files(self, others: list[str]) -> None:
        """A FIFO, directory or symlink loop named like a transcript: never opened (a FIFO would
        block the scanner), counted, and a condition (degraded) while it is there."""
        found = {os.path.join(self.sessions_dir, n) for n in others if is_transcript_name(n)}
        for path in self._irregular - found:
            self.health.clear_condition(path)
        for path in found:
            self._note(path, "notRegularFile", self.sessions_dir)
            self.health.set_condition(path, "cannot read: not a regular file (FIFO, directory or symlink loop)")
        self._irregular = found
