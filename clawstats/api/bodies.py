"""Response bodies: the cache of encoded bodies, and a body made of pieces.

At 50,000 sessions the all-rows JSON is ~41 MB. Encoded at once it was the encoder's growing
buffer, the body, h11's copy of it and the transport's unsent rest: a server's peak rose ~126 MiB
over its ready size on one full ``GET`` without gzip, ~52 MiB with it (measured in
``bench/RESULTS.md``, helper serve8). Here such a body is a sequence of pieces (rows encoded
``BODY_PIECE_ROWS`` at a time): a body that fits the cache's item bound is joined and kept as
before; a larger one is sent as it is encoded (identity) or compressed piece by piece into its
gzip copy, which is kept. The pieces joined are byte for byte the body encoded at once.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import msgspec
from starlette.background import BackgroundTask

from clawstats.core.query import project
from clawstats.watch.store import release_free_heap

_encoder = msgspec.json.Encoder()
#: Rows per piece of a large body (~0.4 MB of JSON at ~800 B a row: below the allocator's 1 MiB
#: mapping threshold, and few enough pieces that their sends cost nothing measurable).
BODY_PIECE_ROWS = 500
#: gzip's level for bodies (the one ``gzip.compress`` was called with before: same size, same cost).
GZIP_LEVEL = 6
#: ``wbits`` for a gzip member (header and trailer), as ``gzip.compress`` writes.
_GZIP_WBITS = 16 + zlib.MAX_WBITS


#: After a response of this size or a streamed one, the C heap's free pages are handed back.
TRIM_AFTER_BYTES = 1 << 20
#: How long after such a response: the transport may still hold its unsent rest when the app
#: has given its last piece (a trim then left ~2 MiB of a 50k gzip body's buffers behind).
TRIM_DELAY_S = 0.5
#: How long after a new revision: the scans that made it freed what they read (SQLite pages,
#: decoded lines, replaced rows; 0.7-2.1 MiB after the sweep's 30 appends at 50k). At most one trim
#: this often while the data changes: ~0.5 ms each, no measurable CPU per append.
TRIM_AFTER_CHANGE_S = 5.0
#: A kept body of ``TRIM_AFTER_BYTES`` or more is let go after this long without a request for
#: it: a new page or a poller without ``If-None-Match`` within a minute still gets it at once.
KEEP_LARGE_S = 60.0


class BodyCache:
    """LRU of encoded bodies by (route, revision, query), bounded in count and in bytes (at
    50,000 sessions one all-rows body is tens of MB: a few of them, not 128). A body larger than
    ``max_item_bytes`` is not kept: it is encoded again per request (~60 ms for 50,000 rows)
    rather than held for a revision that a busy gateway replaces within a second; its gzip
    copy (a tenth of it) is kept, so gzip clients still get it once per revision. Requests are
    answered from the current snapshot only, so a body of an older revision is never asked for
    again: keeping one of a newer revision drops them (a dashboard fetching every revision's
    rows kept up to ``max_bytes`` of dead gzip copies). A large body (at 50,000 sessions the
    all-rows gzip copy, 3.7 MB) is let go ``keep_large_s`` after it was last asked for."""

    def __init__(
        self,
        size: int = 128,
        max_bytes: int = 64 << 20,
        max_item_bytes: int = 8 << 20,
        keep_large_s: float = KEEP_LARGE_S,
    ) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self.keep_large_s = keep_large_s
        self.bytes = 0
        self.revision = 0  # the newest revision kept
        self.items: OrderedDict[tuple[str, int, str], bytes] = OrderedDict()
        self._large_used_s = 0.0  # the event loop's time when a large body was last kept or given
        self._expiry: asyncio.TimerHandle | None = None

    def peek(self, key: tuple[str, int, str]) -> bytes | None:
        body = self.items.get(key)
        if body is not None:
            self.items.move_to_end(key)
            if len(body) >= TRIM_AFTER_BYTES:
                self._used_large()
        return body

    def get(self, key: tuple[str, int, str], build: Callable[[], bytes]) -> bytes:
        body = self.peek(key)
        if body is None:
            body = build()
            self.put(key, body)
        return body

    def put(self, key: tuple[str, int, str], body: bytes) -> None:
        """Keep ``body`` unless it is over ``max_item_bytes`` or of an older revision than kept."""
        if len(body) > self.max_item_bytes or key[1] < self.revision:
            return
        if key[1] > self.revision:
            self.revision = key[1]
            self.items.clear()
            self.bytes = 0
        old = self.items.pop(key, None)
        self.bytes += len(body) - (0 if old is None else len(old))
        self.items[key] = body
        while len(self.items) > 1 and (len(self.items) > self.size or self.bytes > self.max_bytes):
            self.bytes -= len(self.items.popitem(last=False)[1])
        if len(body) >= TRIM_AFTER_BYTES:
            self._used_large()

    def drop_large(self) -> None:
        """Let every body of ``TRIM_AFTER_BYTES`` and more go."""
        for key in [key for key, body in self.items.items() if len(body) >= TRIM_AFTER_BYTES]:
            self.bytes -= len(self.items.pop(key))

    def _used_large(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a test's cache without a server
            return
        self._large_used_s = loop.time()
        if self._expiry is None:
            self._expiry = loop.call_later(self.keep_large_s, self._expire)

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        idle_s = loop.time() - self._large_used_s
        if idle_s < self.keep_large_s:
            self._expiry = loop.call_later(self.keep_large_s - idle_s, self._expire)
            return
        self._expiry = None
        self.drop_large()
        HEAP_TRIM.soon()


def sessions_pieces(rows: Sequence[Any], fields: tuple[str, ...] | None, tail: dict[str, Any]) -> Iterator[bytes]:
    """``{"sessions": [rows, only fields], **tail}`` as msgspec encodes it, in pieces of
    ``BODY_PIECE_ROWS`` rows (each projected only when its piece is encoded)."""
    yield b'{"sessions":['
    for start in range(0, len(rows), BODY_PIECE_ROWS):
        piece = _encoder.encode(project(rows[start : start + BODY_PIECE_ROWS], fields))[1:-1]
        yield b"," + piece if start else piece
    rest = _encoder.encode(tail)  # '{...}': its members follow the list
    yield b"]}" if rest == b"{}" else b"]," + rest[1:]


def gather(pieces: Iterator[bytes], limit_bytes: int) -> tuple[bytes | None, Iterator[bytes]]:
    """The body joined when it is at most ``limit_bytes``; else None and all its pieces (those
    read to find that out, each let go once given, then the rest)."""
    head: list[bytes] = []
    size = 0
    for piece in pieces:
        head.append(piece)
        size += len(piece)
        if size > limit_bytes:
            head.reverse()
            return None, _replay(head, pieces)
    return b"".join(head), iter(())


def _replay(reversed_head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    while reversed_head:
        yield reversed_head.pop()
    yield from rest


def gzip_pieces(pieces: Iterator[bytes], level: int = GZIP_LEVEL) -> bytes:
    """The gzip member of the pieces joined, without joining them (``gzip.compress`` of the
    joined body at ``level`` decompresses to the same bytes; its header has the time in it)."""
    packer = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
    out = [packer.compress(piece) for piece in pieces]
    out.append(packer.flush())
    return b"".join(out)


async def streamed(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A body sent as it is encoded (on the event loop: a piece at a time, ~1 ms each). The loop
    runs between pieces: sending one returns at once while the transport is not full, and without
    a pause a client gone mid-body was noticed only after every piece was encoded and written to
    the closed transport (asyncio warned at each write); other requests wait less, too."""
    for piece in pieces:
        yield piece
        await asyncio.sleep(0)


class HeapTrim:
    """Hands the C heap's free pages back (``malloc_trim``, ~0.3-1.5 ms at 50,000 sessions) a
    while after memory was freed in bulk: ``delay_s`` after a large body is sent (its pieces and
    the transport's buffers), ``change_delay_s`` after the data changed; one trim for a burst.
    glibc keeps freed heap pages for good: a 50k server grew 1-4 MiB per full ``GET``, event-
    stream snapshot or burst of appends, never given back."""

    def __init__(self, delay_s: float = TRIM_DELAY_S, change_delay_s: float = TRIM_AFTER_CHANGE_S) -> None:
        self.delay_s = delay_s
        self.change_delay_s = change_delay_s
        self.done = 0  # trims run (tests count them)
        self._pending: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the one of ``_pending``

    def soon(self) -> None:
        """After a large body (call on the event loop's thread)."""
        self._within(asyncio.get_running_loop(), self.delay_s)

    def after_change(self) -> None:
        """After a new revision (nothing without a running loop: a test publishing by hand)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._within(loop, self.change_delay_s)

    async def after_response(self) -> None:
        """As a response's background task: it runs once the body is handed to the server."""
        self.soon()

    def _within(self, loop: asyncio.AbstractEventLoop, delay_s: float) -> None:
        pending = self._pending
        if pending is not None and self._loop is loop:  # (a stopped loop's never runs)
            if pending.when() <= loop.time() + delay_s:
                return
            pending.cancel()
        self._loop = loop
        self._pending = loop.call_later(delay_s, self._run)

    def _run(self) -> None:
        self._pending = None
        release_free_heap()
        self.done += 1


#: The server's one trimmer (bodies here; in ``events.py`` a new revision and the event stream's
#: first snapshot).
HEAP_TRIM = HeapTrim()
#: A large response's background task.
TRIM_HEAP = BackgroundTask(HEAP_TRIM.after_response)
