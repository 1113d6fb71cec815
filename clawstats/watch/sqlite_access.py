"""Opening an OpenClaw database for one read without changing anything beside it.

Reading never creates or changes a file beside the database, and works in a directory the
reader cannot write (a read-only volume, another user's state). SQLite (>= 3.22) can open a WAL
database read-only only if its ``-wal`` and ``-shm`` exist or can be created, or if it is opened
``immutable``. So: while a writer has the database open (a ``-wal`` file exists) a ``mode=ro``
connection shares the writer's wal-index; a WAL database without a ``-wal`` file has no
connection open (the gateway stopped) and is read ``mode=ro&immutable=1``, which creates nothing;
that read is kept only if the file's identity, size and mtime are the same after it as before (a
writer that started meanwhile and checkpointed into it makes us read again). A connection lives
for one short read transaction: one held open would keep the gateway, on its way out, from
checkpointing and removing its ``-wal`` and ``-shm``; and each read opens the file the path
names now, so a database replaced by rename (a restore, a migration) is followed. A busy
timeout, no writes, no checkpoints.
"""

from __future__ import annotations

import os
import sqlite3
from urllib.parse import quote

import zstandard

from clawstats.core.health import HealthLog
from clawstats.core.records import DEFAULT_MAX_LINE_BYTES
from clawstats.watch.layout import read_regular

BUSY_TIMEOUT_MS = 2000
WAL_INDEX_HEADER_BYTES = 48  # the -shm header: change counter, last frame, salts (sqlite.org/walformat.html)


def connect(path: str) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection and whether it reads an ``immutable`` snapshot (no writer)."""
    header = read_regular(path, 20, whole=False)  # never blocks: a FIFO here is a condition
    # A WAL database without a -wal file has no connection open: nothing can change it while
    # it is read, except a writer starting now (checked after the read). Otherwise (a writer
    # present, or a rollback-journal database) the normal locking read is the safe one.
    immutable = header[18:20] == b"\x02\x02" and not os.path.exists(path + "-wal")
    uri = f"file:{quote(path)}?mode=ro" + ("&immutable=1" if immutable else "")
    db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    # Bytes, not str: one row with invalid UTF-8 must be a counted skip, not an error
    # that stops reading the whole database.
    db.text_factory = bytes
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA query_only=1")
    return db, immutable


def marker(path: str) -> tuple[object, ...]:
    """What moves with any commit: the database's and the ``-wal``'s identity, size and mtime,
    and the ``-shm`` wal-index header. Unchanged: nothing to query."""
    st = os.stat(path)
    try:
        wal = os.stat(path + "-wal")
        wal_mark: tuple[int, ...] = (wal.st_ino, wal.st_size, wal.st_mtime_ns)
    except FileNotFoundError:
        wal_mark = ()
    try:
        with open(path + "-shm", "rb") as shm:
            header = shm.read(WAL_INDEX_HEADER_BYTES)
    except FileNotFoundError:
        header = b""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, wal_mark, header)


def file_mark(path: str) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def event_at(db: sqlite3.Connection, rowid: int) -> tuple[bytes, int] | None:
    """(session id, seq) of the transcript event at ``rowid``, None when there is none."""
    found = db.execute("SELECT session_id, seq FROM transcript_events WHERE rowid = ?", (rowid,)).fetchone()
    return (bytes(found[0]), int(found[1])) if found is not None else None


def event_bytes(
    zstd: zstandard.ZstdDecompressor,
    health: HealthLog,
    store: str,
    sid: str,
    event_json: str | bytes | None,
    event_zstd: bytes | None,
) -> bytes | None:
    """An event's JSON (plain or zstd); None, counted in ``health``, when it has neither or its
    zstd payload does not decompress (``store``, ``sid``: where, for health)."""
    if event_json is not None:
        return event_json.encode() if isinstance(event_json, str) else bytes(event_json)
    if event_zstd is None:
        health.count(store, "emptyEvent", sid)
        return None
    try:
        return zstd.decompress(event_zstd, max_output_size=DEFAULT_MAX_LINE_BYTES)
    except zstandard.ZstdError as exc:
        health.count(store, "corruptEvent", f"{sid}: {exc}")
        return None
