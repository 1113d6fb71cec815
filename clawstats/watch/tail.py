"""Incremental reading of one JSONL transcript: only new bytes, complete lines only.

A :class:`Tail` keeps the byte offset of the last complete line, a buffer for a trailing
partial line (OpenClaw may be mid-write), the file's identity (device, inode, a digest of its
first bytes) and the :class:`TranscriptStats` it feeds. A shrunk file, a new inode
or a changed head means the file was replaced: it is re-read alone, from zero. Compressed
archives (``.gz``/``.zst``) are immutable and read whole once.

An idle transcript is kept *packed*: its statistics as their dump (``TranscriptStats.dump()``,
about half the objects' size), unpacked when new bytes come (``stats``) and read meanwhile by
:meth:`Tail.peek` (a few figures), :meth:`Tail.view` (the view's part) or :meth:`Tail.current`
(a temporary copy). A worker's whole read and the image it hands back: ``watch/tail_image.py``.

What an idle file's tail keeps is little beyond that image (~112 bytes of slots, the keys of the
rows reading it one): its offset as the size in its identity (``AT_SIZE``), its identity as the
image's extra item, nothing of a line being written (``_mid`` None); a change takes them back into
their slots first (``_wake``).
"""

from __future__ import annotations

import errno
import gzip
import os
import stat
from typing import Any, BinaryIO, ClassVar

import zstandard

from clawstats.core.health import HealthLog
from clawstats.core.records import DEFAULT_MAX_LINE_BYTES, BadRecord, decode_line, decode_lines
from clawstats.core.transcript import TranscriptStats
from clawstats.core.transcript_image import extra_of, without_extra
from clawstats.core.usage import Pricer
from clawstats.watch.identity import HEAD_BYTES, ID_BYTES, FileId, head_digest, size_of
from clawstats.watch.layout import NotRegularFile
from clawstats.watch.tail_state import AT_SIZE, IDLE_MID, IDLE_POLLS, QUIET_MIDS, TailState

__all__ = [
    "AT_SIZE",
    "DEFAULT_MAX_LINE_BYTES",
    "IDLE_POLLS",
    "FileId",
    "Tail",
    "head_digest",
]

CHUNK_BYTES = 4 << 20
#: What a read asks for past the size the stat saw (bytes written since).
MIN_READ_BYTES = 64 << 10
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
#: A file of at most this many bytes is packed without its context segment: new bytes rebuild its
#: statistics by reading it again from the start (~0.4 ms at this size: bench/RESULTS.md, helper seg8).
REREAD_MAX_BYTES = 128 << 10


class ReadCounts:
    """Lifetime counts of every tail (an object of its own: writing a class attribute at each
    read would invalidate the interpreter's attribute caches for every tail, ~13 us a file)."""

    __slots__ = ("bytes_read",)

    def __init__(self) -> None:
        self.bytes_read = 0


class Tail(TailState):
    """Reader state of one transcript file; ``poll()`` folds new complete lines into ``stats``."""

    #: lifetime counts of statistics loaded from a packed state, and rebuilt by reading their
    #: file (or session) again from the start, by every tail (tests pin them)
    unpacks: ClassVar[int] = 0
    rereads: ClassVar[int] = 0

    #: lifetime count of the bytes read by every tail in this process (tests read it; not a
    #: slot of each tail: 8 bytes, and an int object of its own for a file read more than once)
    counts: ClassVar[ReadCounts] = ReadCounts()

    #: 9 slots, 112 bytes a tail (12 were 128): what is only set while a transcript is being
    #: written to (a partial line, an oversized one skipped, an unterminated last line, the polls
    #: it has been idle) is one slot, None once it is idle; the keys of the rows reading it one.
    __slots__ = ("path", "price", "generation", "revision", "readers")  # (and TailState's)

    def __init__(self, path: str, price: Pricer | None = None, state: TranscriptStats | bytes | None = None) -> None:
        self.path = path
        # The statistics, or their dump while the transcript is idle (packed). One slot, so a
        # reader in another thread (a view's timeline) always sees one or the other.
        self._state: TranscriptStats | bytes = state if state is not None else TranscriptStats(price)
        self.price = price
        self.generation = 0  # bumped when the statistics start over: a view of older ones reads none
        # End of the last complete line consumed; AT_SIZE: the file's size in ``identity`` (an
        # idle file read to its end: no int object of its own, 32 bytes a tail; ``share_offset``)
        self._offset = 0
        self._ident: bytes | None = b""  # file id and head digest (see watch/identity.py, ``identity``)
        self.revision = 0  # bumped whenever stats change
        # (pending, skipping, open_line, idle): see those properties; None: (b"", False, False,
        # IDLE_POLLS), an idle transcript's
        self._mid: tuple[bytes, bool, bool, int] | None = QUIET_MIDS[0]
        # The row key reading this transcript, or the keys when several (None: none); kept by the
        # store's joins (``watch/joins.py``: in a map of every transcript it was ~37 bytes a row)
        self.readers: str | tuple[str, ...] | None = None

    @property
    def compressed(self) -> bool:
        """An archive read whole (told by its name when a change is seen: not a slot, 8 bytes a tail)."""
        return self.path.endswith((".gz", ".zst"))

    def _keeps_segment(self) -> bool:
        """Not when the file is small: read again when it grows (an archive, read whole)."""
        return not 0 < self.offset <= REREAD_MAX_BYTES

    def _load(self, blob: bytes) -> TranscriptStats:
        Tail.unpacks += 1
        return TranscriptStats.load(blob, self.price)

    # -- reading ------------------------------------------------------------------------------

    def use_price(self, price: Pricer | None) -> None:
        """Price the calls read from now on with ``price`` (a tail restored from the cache)."""
        self.price = price
        state = self._state
        if isinstance(state, TranscriptStats):
            state.price = price

    def restart(self) -> None:
        self._unfold()
        self._state = TranscriptStats(self.price)
        self.generation += 1
        self.offset = 0
        self.head = b""
        self.pending = b""
        self.skipping = False
        self.open_line = False
        self.revision += 1

    def poll(self, health: HealthLog, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> bool:
        """Read what is new; True when the statistics changed. Raises OSError on I/O faults."""
        st = os.stat(self.path)
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block open() and read() forever
            raise NotRegularFile(errno.EINVAL, "not a regular file", self.path)
        file_id = FileId.packed_of(st)
        ident = self._ident
        if ident is None:  # (kept in the packed image)
            ident = extra_of(self._state)  # type: ignore[arg-type]
        if ident.startswith(file_id):  # the packed FileId comes first
            self._unchanged()
            return False
        offset = self._wake(ident)
        mid = self._mid
        if self.compressed:
            self.restart()
            self._read_compressed(health, max_line_bytes)
            self._identify(file_id, b"")
            self.pack()  # an archive never changes
            return True
        # O_NONBLOCK: if the path was swapped for a FIFO since the stat, open and read return at once.
        # A raw descriptor and positional reads: no buffered file object, no seeks (a cold read of
        # 50,000 small files paid ~16 us a file for open, seeks and reads through one, ~9 so).
        fd = os.open(self.path, _OPEN_FLAGS)
        try:
            pending = mid[0] if mid is not None else b""
            if (ident and self.replaced(fd, st, offset + len(pending))) or (
                mid is not None and mid[2] and not self._close_open_line(fd)
            ):
                self.restart()
            else:
                self._unpack(fd, max_line_bytes)
            whole = self._offset == 0 and (self._mid is None or not self._mid[0])  # first read, or again from the start
            changed, first = self._consume(fd, st.st_size, health, max_line_bytes)
            changed |= self._last_line(health)
            self.stats.settle()
            ident = self._ident or b""
            head = ident[ID_BYTES:] if len(ident) >= ID_BYTES else ident
            if not head and self._offset:  # the first bytes, as read from 0 now (else read again)
                head = head_digest(first if len(first) == HEAD_BYTES else os.pread(fd, HEAD_BYTES, 0))
        finally:
            os.close(fd)
        self._identify(file_id, head)  # file id and head in one go (one bytes object)
        if changed:
            self.revision += 1
        state = self._state
        if whole:
            # Most of a store is idle: packed at once, so a cold read over 50,000 transcripts
            # never holds all their statistics (their memory is reused by the next read instead
            # of left in holes: 259 vs 277 MiB at ready when packed as each row is built); one
            # being written to is unpacked by its next append, once.
            self.pack()
        elif isinstance(state, TranscriptStats) and state.blob is not None:
            self._state = state.blob  # unpacked for new bytes that held no new line (a partial one)
        if self._offset == st.st_size and self._offset > 0:  # read to the end as stat'ed (share_offset)
            self._offset = AT_SIZE
        return changed

    def _unchanged(self) -> None:
        """A poll found the file as it was: idle once polled so ``IDLE_POLLS`` times (packed)."""
        mid = self._mid
        idle = IDLE_POLLS if mid is None else mid[3]
        if idle < IDLE_POLLS:
            idle += 1
            self.idle = idle
        if idle >= IDLE_POLLS and type(self._state) is not bytes:
            self.pack()
            self.compact()

    def _wake(self, ident: bytes) -> int:
        """The file changed: not idle, and what an idle tail keeps elsewhere back in its slots
        (the offset, the identity ``ident``: see ``compact``); the offset."""
        mid = self._mid
        if mid is None or mid[3]:
            self.idle = 0
        offset = self._offset
        if offset == AT_SIZE:
            offset = self._offset = size_of(ident)
        if self._ident is None:
            self._ident = ident
        return offset

    def _unpack(self, fd: int, max_line_bytes: int) -> None:
        """Unpack the statistics for new bytes; packed without their segment, rebuilt from the bytes
        up to the offset in a tail of their own (readers in other threads see the packed ones until
        then; its health counted at the first read), or read from the start if lines no longer end there."""
        state = self._state  # (its identity out of it already: ``_wake``)
        stats = self._load(without_extra(state)) if isinstance(state, bytes) else state
        if stats.seg_chars is None:
            self._state = stats
            return
        Tail.rereads += 1
        again, scratch = Tail(self.path, self.price), HealthLog()
        data = os.pread(fd, self.offset, 0)
        if len(data) == self.offset:
            again._feed(data, scratch, max_line_bytes)
            again._last_line(scratch)
        if (again.offset, again.skipping, again.open_line) != (self.offset, self.skipping, self.open_line):
            self.restart()
            return
        rebuilt = again.stats
        rebuilt.settle()
        rebuilt.blob = stats.blob  # its image until a line changes it (new bytes may hold none)
        self._state = rebuilt

    def _close_open_line(self, fd: int) -> bool:
        """After an unterminated last line: skip its newline if it came; False when the line
        went on instead (what we counted was not the whole line: the file is read again)."""
        if not self.open_line:
            return True
        after = os.pread(fd, 2, self.offset)
        if not after:
            return True
        self.open_line = False
        for ending in (b"\n", b"\r\n"):
            if after.startswith(ending):
                self.offset += len(ending)
                return True
        return False

    def _last_line(self, health: HealthLog) -> bool:
        """A complete JSON line at the end of the file without its newline is a line (OpenClaw
        counts it; a JSON object cannot be a proper prefix of a longer valid line). One that
        does not parse yet is left pending: the writer may be in the middle of it."""
        mid = self._mid
        if mid is None or not mid[0] or mid[1] or not mid[0].rstrip().endswith(b"}"):
            return False  # a JSON object line ends with "}": anything else is still being written
        pending = mid[0]
        try:
            line = decode_line(pending)
        except BadRecord:
            return False
        self.stats.apply(line)
        self._offset += len(pending)
        self._set_mid(b"", False, True, mid[3])
        return True

    def _consume(self, fd: int, size: int, health: HealthLog, max_line_bytes: int) -> tuple[bool, bytes]:
        """Read from the end of what was consumed to the end of the file (``size`` bytes when it
        was stat'ed: each read asks for what is left of them and one more, so that a read coming
        back short past them is the end, without one more read to see nothing). Returns whether
        the statistics changed and, for a read from the start, its first ``HEAD_BYTES``."""
        changed = False
        position = self._offset + len(self._mid[0] if self._mid is not None else b"")
        first = b""
        while True:
            want = min(size - position + 1, CHUNK_BYTES) if position < size else MIN_READ_BYTES
            chunk = os.pread(fd, want, position)
            if not chunk:
                return changed, first
            if position == 0:
                first = chunk[:HEAD_BYTES]
            position += len(chunk)
            Tail.counts.bytes_read += len(chunk)
            changed |= self._feed(chunk, health, max_line_bytes)
            if len(chunk) < want and position >= size:
                return changed, first  # the end as of the stat (bytes written since: the next poll)

    def _feed(self, chunk: bytes, health: HealthLog, max_line_bytes: int) -> bool:
        """Split ``pending + chunk`` into complete lines; keep the unfinished tail."""
        # (the slots read once and written once: a property call per access was ~10 a file)
        mid = self._mid or IDLE_MID
        pending, skipping = mid[0], mid[1]
        offset = self._offset
        changed = False
        start = 0
        if skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                self._offset = offset + len(chunk)
                return False
            offset += newline + 1
            skipping = False
            start = newline + 1
        last = chunk.rfind(b"\n", start)
        if last < 0:
            pending += chunk[start:]
        else:
            data = pending + chunk[start : last + 1] if pending else chunk[start : last + 1]
            pending = chunk[last + 1 :]
            offset += len(data)
            self._offset = offset  # (before the fold: a reader of the offset in it sees this one)
            changed = self._lines(data, health, max_line_bytes)
        if len(pending) > max_line_bytes:
            health.count(self.path, "oversizedLine", f"over {max_line_bytes} bytes")
            offset += len(pending)
            pending = b""
            skipping = True
        self._offset = offset
        if pending is not mid[0] or skipping is not mid[1]:
            self._set_mid(pending, skipping, mid[2], mid[3])
        return changed

    def _lines(self, data: bytes, health: HealthLog, max_line_bytes: int) -> bool:
        stats = self.stats
        if len(data) <= max_line_bytes:  # no line can be oversized: try the one-call decoder
            try:
                lines = decode_lines(data)
            except BadRecord:
                pass  # some line is bad: the slow path below counts exactly those
            else:
                stats.fold(lines)
                return bool(lines)
        changed = False
        for raw in data.split(b"\n"):
            if not raw or raw.isspace():
                continue
            if len(raw) > max_line_bytes:
                health.count(self.path, "oversizedLine", f"{len(raw)} bytes")
                continue
            try:
                line = decode_line(raw)
            except BadRecord as bad:
                health.count(self.path, bad.kind, bad.detail)
                continue
            stats.apply(line)
            changed = True
        return changed

    def _read_compressed(self, health: HealthLog, max_line_bytes: int) -> None:
        stream: Any  # GzipFile or a zstandard stream reader: both file-like
        raw = _open_nonblocking(self.path)
        try:
            with raw:
                if self.path.endswith(".gz"):
                    stream = gzip.GzipFile(fileobj=raw, mode="rb")
                else:
                    stream = zstandard.ZstdDecompressor().stream_reader(raw, closefd=False)
                with stream:
                    while True:
                        chunk = stream.read(CHUNK_BYTES)
                        if not chunk:
                            break
                        Tail.counts.bytes_read += len(chunk)
                        self._feed(chunk, health, max_line_bytes)
        except (OSError, EOFError, ValueError, zstandard.ZstdError) as exc:  # corrupt archive: keep what decoded
            health.count(self.path, "corruptArchive", str(exc))
        if self.pending and not self._last_line(health):
            health.count(self.path, "partialLine", "archive ends with an incomplete line")
        self.pending = b""
        self.stats.settle()
        self.revision += 1


def _open_nonblocking(path: str) -> BinaryIO:
    return os.fdopen(os.open(path, _OPEN_FLAGS), "rb")
