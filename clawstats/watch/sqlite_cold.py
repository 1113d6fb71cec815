"""A first read of a SQLite store's events in worker processes: the file layout's cold read
(:mod:`clawstats.watch.cold`), for ``transcript_events``.

The agent's own read transaction lists every session's newest ``seq`` and event count; the
sessions it has never read are split into batches of about equal event counts; each worker
opens the database itself (:func:`~clawstats.watch.sqlite_access.connect`), reads its sessions'
events up to that newest ``seq``, folds them and returns each session's packed statistics. The
agent adopts a session only if the worker read as many events as its own transaction counted;
any other (a deletion or a rewrite in between) it reads again itself, in that transaction. One
process read 50,000 sessions' events at a core's pace while the other core idled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import BrokenExecutor

import msgspec
import zstandard

from clawstats.core.health import HealthLog
from clawstats.core.records import BadRecord, Line, decode_line
from clawstats.core.usage import Pricer
from clawstats.watch.cold import BATCHES_PER_WORKER, batches, fork_pool
from clawstats.watch.sqlite_access import connect, event_bytes
from clawstats.watch.tail import FileId, Tail
from clawstats.watch.tail_image import TailImage, export

log = logging.getLogger("clawstats")

#: An agent with fewer never-read events than this (~25 MB of JSON) reads them in its own
#: process: forking would cost more than it saves.
PARALLEL_MIN_EVENTS = 50_000
#: At most this many decoded events wait for their fold: each holds its event's bytes (its
#: content is a ``Raw`` of them), so a session of a million events held at once was its whole
#: JSON in the worker's memory; a file's read folds per 4 MiB chunk the same way.
FOLD_EVENTS = 1024
_EVENTS_UP_TO = (
    "SELECT seq, event_json, event_zstd FROM transcript_events WHERE session_id = ? AND seq <= ? ORDER BY seq"
)
#: A session of at most this many events is packed without its context segment
#: (``core/transcript_image.py``): new events rebuild its statistics by reading its events again
#: (``SessionEvents._rebuild``: ~2.7 us an event of a sweep, ~0.7 ms at this count; a sweep's
#: sessions have 9 events, 93 at most; bench/RESULTS.md, helper seg8).
REREAD_MAX_EVENTS = 256
#: How the forked workers price calls: set before the pool forks, inherited, never pickled.
_price: Pricer | None = None


class SessionImage(msgspec.Struct, frozen=True, array_like=True):
    """One session as a worker read it: its session id, the events read, the cursor (a
    :class:`TailImage`), and what was skipped (kind -> (count, the first one's detail))."""

    sid: str
    events: int
    image: TailImage
    skipped: dict[str, tuple[int, str]]


def read_sessions(
    store: str, newest: dict[str, tuple[int, int]], workers: int, db_id: FileId, price: Pricer | None
) -> Iterator[SessionImage]:
    """The sessions of ``newest`` (session id -> (newest seq, events)) read by ``workers``
    processes, in batch order, each batch as it comes: the caller adopts it while the workers
    read on (adopted after the last batch, the adoption was ~0.09 s an agent at 50,000 sessions
    with both cores idle but one)."""
    global _price
    _price = price
    groups = batches({sid: count for sid, (_top, count) in newest.items()}, workers * BATCHES_PER_WORKER)
    work = [[(sid, newest[sid][0]) for sid in group] for group in groups]
    read = 0
    try:
        with fork_pool(workers) as pool:
            for images in pool.map(_read_batch, [store] * len(work), work, [db_id] * len(work)):
                read += len(images)
                yield from images
    except (OSError, BrokenExecutor) as exc:  # no process to be had, or one killed (the OOM killer)
        # the sessions no worker handed back are read by the agent itself, in this transaction
        log.warning("SQLite first read: worker processes failed (%s): %d sessions read by them", exc, read)


def _read_batch(store: str, sessions: list[tuple[str, int]], db_id: FileId) -> list[SessionImage]:
    zstd = zstandard.ZstdDecompressor()
    health = HealthLog()
    images: list[SessionImage] = []
    db, _immutable = connect(store)
    try:
        db.execute("BEGIN")
        for sid, top in sessions:
            tail = Tail(sid, _price)  # its path: the agent's stats id for it once adopted
            tail.file_id = db_id
            skipped_before = sum(health.counters.values())
            events = fold_events(db.execute(_EVENTS_UP_TO, (sid, top)), tail, zstd, health, store, sid)
            tail.pack(segment=keeps_segment(tail))
            skipped: dict[str, tuple[int, str]] = {}
            if sum(health.counters.values()) != skipped_before:
                skipped = {kind: (n, f"{sid} (read by a worker)") for kind, n in health.counters.items()}
                health = HealthLog()
            images.append(SessionImage(sid, events, export(tail), skipped))
        db.execute("COMMIT")
    finally:
        db.close()
    return images


def keeps_segment(tail: Tail) -> bool:
    """Whether a session's cursor packs its statistics with their context segment: not when it
    has few events (:data:`REREAD_MAX_EVENTS`: read again when more come). A cursor at 0 (a session
    whose events were all deleted) keeps it: no rebuild runs before its next events are folded."""
    return not 0 < tail.offset <= REREAD_MAX_EVENTS


def fold_events(
    rows: Iterable[tuple[int, bytes | None, bytes | None]],
    tail: Tail,
    zstd: zstandard.ZstdDecompressor,
    health: HealthLog,
    store: str,
    sid: str,
) -> int:
    """Fold a session's events (seq, JSON, zstd JSON) into ``tail``'s statistics, its cursor after
    each, and settle them; the events read (a worker's first read, a session read again)."""
    stats = tail.stats
    lines: list[Line] = []
    events = 0
    for seq, event_json, event_zstd in rows:
        tail.offset = seq + 1
        events += 1
        raw = event_bytes(zstd, health, store, sid, event_json, event_zstd)
        if raw is None:
            continue
        try:
            lines.append(decode_line(raw))
        except BadRecord as bad:
            health.count(store, bad.kind, f"{sid} seq {seq}: {bad.detail}")
        if len(lines) >= FOLD_EVENTS:
            stats.fold(lines)
            lines = []
    # One fold of the session's events (what applying each in turn gives; a fold per event was
    # 108 Python calls and ~5,270 bytecodes a session of ~14 events, 82 / ~4,870), of its last
    # ones for a session of more than FOLD_EVENTS.
    stats.fold(lines)
    stats.settle()
    return events
