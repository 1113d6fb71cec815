"""The persisted index: per transcript its identity, offset and accumulated statistics.

A small SQLite file in the user cache dir (one per state dir) lets a restart over a
multi-GB store cost O(changed bytes): a cached transcript resumes at its offset when its
device, inode and first bytes still match, and is re-read from zero otherwise. Writes are
batched in one transaction (the store throttles them); an unwritable or full cache dir degrades health and
the service goes on without it. SIGKILL mid-write leaves the last committed state (SQLite).
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from clawstats.core.health import HealthLog
from clawstats.core.transcript import TranscriptStats
from clawstats.watch.tail import FileId, Tail

#: 2: per-call costs in the state, a meta table naming the prices used; 3: ``head`` holds
#: :func:`~clawstats.watch.tail.head_digest` of the first bytes, not the bytes
SCHEMA_VERSION = 3


def default_cache_path(cache_dir: Path, state_dir: Path) -> Path:
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
    return cache_dir / f"index-{digest}.sqlite"


#: An owner is written only when it differs from the one saved (no row changed otherwise).
_SAVE_OWNER = (
    "INSERT INTO owners VALUES (?, ?, ?) ON CONFLICT (agent, sid) DO UPDATE SET key = excluded.key"
    " WHERE key IS NOT excluded.key"
)


class IndexCache:
    def __init__(
        self, path: Path, health: HealthLog | None = None, min_interval_s: float = 5.0, identity: str = ""
    ) -> None:
        self.path = path
        #: what the cached states were computed with (the catalog's prices): another one drops them
        self.identity = identity
        self.health = health
        self.min_interval_s = min_interval_s
        # Nothing is kept per transcript or owner: the store hands ``save`` only what changed (a
        # map of every saved path and of every owner was ~300 bytes a session at 50,000), and an
        # owner saved as it is already is not written (the upsert below: a warm start's first
        # save names every row's owner).
        self._db: sqlite3.Connection | None = None
        self.failure: str | None = None  # why it became unavailable, when it did
        self._open()

    def _fail(self, what: str, exc: BaseException) -> None:
        reason = f"index cache unavailable ({what}: {exc}); running without it"
        self.failure = reason
        if self.health is not None:
            self.health.set_condition(str(self.path), reason)
        # else (opening, before the store's health exists): its owner reports ``failure`` once
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        self._db = None

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One writer uses it, from whichever worker thread runs the scan (never concurrently).
            db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                db.executescript(
                    "DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS owners; DROP TABLE IF EXISTS meta;"
                    "CREATE TABLE files (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, size INTEGER,"
                    " mtime_ns INTEGER, offset INTEGER, head BLOB, state BLOB, open_line INTEGER);"
                    "CREATE TABLE owners (agent TEXT, sid TEXT, key TEXT, PRIMARY KEY (agent, sid));"
                    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT);"
                    f"PRAGMA user_version={SCHEMA_VERSION};"
                )
            found = db.execute("SELECT value FROM meta WHERE name = 'identity'").fetchone()
            if found is None or found[0] != self.identity:
                with db:  # states priced with other prices: read the transcripts again
                    db.execute("BEGIN")
                    db.execute("DELETE FROM files")
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('identity', ?)", (self.identity,))
            self._db = db
        except (sqlite3.Error, OSError) as exc:
            self._fail("open", exc)

    @property
    def available(self) -> bool:
        return self._db is not None

    def restore_all(self) -> dict[str, Tail]:
        """Every cached transcript at once (one query: a warm start over thousands of files). The
        rows whose state no build reads now (another image version) are deleted: nothing restores
        them, so the store's forgetting of what no agent read again never sees them (a SQLite
        cursor under a former stats id, a file deleted while another version ran)."""
        if self._db is None:
            return {}
        tails = {}
        stale: list[str] = []
        try:
            # Row by row, not fetchall(): each row's ints and tuple (~400 bytes) are freed before
            # the next is made, instead of 50,000 of them at once leaving holes between the
            # states and paths kept (~10 MiB of RSS a warm server at 50,000 sessions held).
            for path, *fields in self._db.execute(
                "SELECT path, dev, ino, size, mtime_ns, offset, head, state, open_line FROM files"
            ):
                tail = self._tail(path, *fields)
                if tail is not None:
                    tails[path] = tail
                else:
                    stale.append(path)
        except sqlite3.Error as exc:
            self._fail("read", exc)
            return {}
        self.forget(stale)
        return tails

    def _tail(
        self,
        path: str,
        dev: int,
        ino: int,
        size: int,
        mtime_ns: int,
        offset: int,
        head: bytes,
        state: bytes,
        open_line: int,
    ) -> Tail | None:
        try:
            TranscriptStats.check(state)
        except ValueError:
            return None
        tail = Tail(path, state=state)  # packed: unpacked when new bytes come
        # A trailing partial line was not persisted: make the next poll read past the offset.
        file_id = FileId(dev, ino, size, mtime_ns) if size == offset else FileId(dev, ino, -1, -1)
        # (as a worker's image is adopted: the identity folded into the image, which carries it
        # already when this build saved it)
        tail.keep(offset, file_id.packed() + (head or b""), (b"", False, bool(open_line), 0))
        return tail

    def owners(self, agent_id: str) -> dict[str, str]:
        if self._db is None:
            return {}
        try:
            rows = self._db.execute("SELECT sid, key FROM owners WHERE agent = ?", (agent_id,)).fetchall()
        except sqlite3.Error as exc:
            self._fail("read", exc)
            return {}
        return dict(rows)

    def save(self, tails: list[Tail], owners: list[tuple[str, str, str]]) -> None:
        """Persist the given tails (those whose statistics moved since the last save) and
        ``(agent, sessionId, key)`` owners in one transaction; the store decides what and when (at
        most every ``min_interval_s``). Left out: a tail never read to the end of a known file, one
        restored from here that read nothing since (revision 0); an owner saved as it is is not
        written again."""
        if self._db is None:
            return
        changed = [tail for tail in tails if tail.identified and tail.revision]
        if not changed and not owners:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                for tail in changed:
                    fid = tail.file_id
                    assert fid is not None
                    # Store the size as the offset when a partial line is pending (see restore).
                    size = fid.size if not tail.pending else -1
                    self._db.execute(
                        "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            tail.path,
                            fid.dev,
                            fid.ino,
                            size,
                            fid.mtime_ns,
                            tail.offset,
                            tail.head,
                            tail.image(),  # a packed transcript's as kept
                            tail.open_line,
                        ),
                    )
                self._db.executemany(_SAVE_OWNER, owners)
        except (sqlite3.Error, OSError) as exc:
            self._fail("write", exc)
            return
        if self.health is not None:
            self.health.clear_condition(str(self.path))

    def forget(self, paths: list[str]) -> None:
        """Drop these transcripts (the store names the cached ones no agent read again: deleted
        or no longer listed while we were not running), without a stat per cached file."""
        if self._db is None or not paths:
            return
        try:
            with self._db:
                self._db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])
        except sqlite3.Error as exc:
            self._fail("forget", exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
