"""Response bodies: the cache of encoded bodies, and a body made of pieces.

At 50,000 sessions the all-rows JSON is ~41 MB. Encoded at once it was the encoder's growing
buffer, the body, h11's copy of it and the transport's unsent rest: a server's peak rose ~110 MiB
over its ready size on one full ``GET`` without gzip, ~35 MiB with it (measured in
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
#: Rows per piece of a large body (~0.5 MB of JSON at ~1 KB a row: below the allocator's 1 MiB
#: mapping threshold, and few enough pieces that their sends cost nothing measurable).
BODY_PIECE_ROWS = 500
#: gzip's level for bodies (the one ``gzip.compress`` was called with before: same bytes, same cost).
GZIP_LEVEL = 6
#: ``wbits`` for a gzip member (header and trailer), as ``gzip.compress`` writes.
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class BodyCache:
    """LRU of encoded bodies by (route, revision, query), bounded in count and in bytes (at
    50,000 sessions one all-rows body is tens of MB: a few of them, not 128). A body larger than
    ``max_item_bytes`` is not kept: it is encoded again per request (~60 ms for 50,000 rows)
    rather than held for a revision that a busy gateway replaces within a second; its gzip
    copy (a tenth of it) is kept, so gzip clients still get it once per revision. Requests are
    answered from the current snapshot only, so a body of an older revision is never asked for
    again: keeping one of a newer revision drops them (a dashboard fetching every revision's
    rows kept up to ``max_bytes`` of dead gzip copies)."""

    def __init__(self, size: int = 128, max_bytes: int = 64 << 20, max_item_bytes: int = 8 << 20) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self.bytes = 0
        self.revision = 0  # the newest revision kept
        self.items: OrderedDict[tuple[str, int, str], bytes] = OrderedDict()

    def peek(self, key: tuple[str, int, str]) -> bytes | None:
        body = self.items.get(key)
        if body is not None:
            self.items.move_to_end(key)
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
    """A body sent as it is encoded (on the event loop: a piece at a time, ~1 ms each)."""
    for piece in pieces:
        yield piece


#: After a response of this size or a streamed one, the C heap's free pages are handed back.
TRIM_AFTER_BYTES = 1 << 20
#: How long after such a response: the transport may still hold its unsent rest when the app
#: has given its last piece (a trim then left ~2 MiB of a 50k gzip body's buffers behind).
TRIM_DELAY_S = 0.5


class HeapTrim:
    """Hands the C heap's free pages back (``malloc_trim``, ~1 ms at 50,000 sessions) once the
    large bodies of the moment are sent: ``delay_s`` after the first of them, one trim for a
    burst. Their pieces and the transport's buffers came from the heap, and glibc keeps freed
    heap pages for good: a 50k server grew 1-4 MiB per full ``GET`` or event-stream snapshot."""

    def __init__(self, delay_s: float = TRIM_DELAY_S) -> None:
        self.delay_s = delay_s
        self.done = 0  # trims run (tests count them)
        self._pending: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the one of ``_pending``

    def soon(self) -> None:
        """Call on the event loop's thread."""
        loop = asyncio.get_running_loop()
        if self._pending is None or self._loop is not loop:  # (a stopped loop's never runs)
            self._loop = loop
            self._pending = loop.call_later(self.delay_s, self._run)

    async def after_response(self) -> None:
        """As a response's background task: it runs once the body is handed to the server."""
        self.soon()

    def _run(self) -> None:
        self._pending = None
        release_free_heap()
        self.done += 1


#: The server's one trimmer (bodies here, the event stream's first snapshot in ``events.py``).
HEAP_TRIM = HeapTrim()
#: A large response's background task.
TRIM_HEAP = BackgroundTask(HEAP_TRIM.after_response)
