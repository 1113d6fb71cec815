"""Reading parts of a transcript's dump (``TranscriptStats.dump()``) without loading it.

An idle transcript is kept packed (its dump, not its ``TranscriptStats``); the readers that only
need its cost, entry count, base prompt, last call or timeline (:func:`peek`), what its view
keeps (:func:`shape_of`) or its buckets (:func:`buckets_of`, read on demand: a view of an idle
transcript keeps the dump, not the buckets) read them here: the other fields are skipped
undecoded (``msgspec.Raw``), and only what is asked for is built.
"""

from __future__ import annotations

from array import array

import msgspec

from clawstats.core.transcript import Compaction, TranscriptStats
from clawstats.core.transcript_image import day_string, last_call
from clawstats.core.usage import Bucket

__all__ = ["Peek", "Shape", "buckets_of", "peek", "shape_of"]


def peek(blob: bytes) -> Peek:
    """The figures readers of an idle transcript need (cost, entries, the base prompt, the last
    call, the timeline) read from the start of its dump, the rest never looked at; nothing kept."""
    return _peek_decoder.decode(blob).figures()


class Peek(msgspec.Struct, frozen=True, gc=False):
    """What :func:`peek` reads of a transcript's state."""

    entries: int
    cost: float
    last_call_ms: float | None
    tl_f: bytes | array[float]  # the timeline as dumped (native-endian doubles, 32-bit ints)
    tl_i: bytes | array[int]
    base_prompt: int | None

    @classmethod
    def of(cls, stats: TranscriptStats) -> Peek:
        """The same figures of live statistics (the timeline's arrays themselves, no copy)."""
        return cls(stats.entries, stats.cost, stats.last_call_ms, stats.tl_f, stats.tl_i, stats.base_prompt)

    @property
    def calls(self) -> int:
        return len(self.tl_i) // (2 if isinstance(self.tl_i, array) else 8)

    def timeline(self, calls: int) -> tuple[array[float], array[int], array[float], array[int]]:
        """(call ms, context tokens, cumulative cost, output tokens) of the first ``calls`` calls."""
        tl_f, tl_i = self.tl_f, self.tl_i
        if not isinstance(tl_f, array):
            tl_f = array("d", tl_f[: 16 * calls])
        if not isinstance(tl_i, array):
            tl_i = array("I", tl_i[: 8 * calls])
        end = 2 * calls
        return tl_f[0:end:2], tl_i[0:end:2], tl_f[1:end:2], tl_i[1:end:2]


class Shape(msgspec.Struct, frozen=True, gc=False):
    """What a packed transcript's view keeps decoded (:func:`shape_of`): compactions, spawned
    children (the lineage reads them of every view), the number of calls. Not its buckets."""

    compactions: tuple[Compaction, ...]
    spawned: tuple[str, ...]
    calls: int


def shape_of(blob: bytes) -> Shape:
    """The view's part of a dump but its buckets (the timeline's values and the buckets skipped
    undecoded, the fields after them never looked at): a packed transcript's view without loading it."""
    state = _shape_decoder.decode(blob)
    return Shape(state.compactions, state.spawned, _bin_size(state.tl_i) // 8)


def buckets_of(blob: bytes) -> dict[tuple[str, str], Bucket]:
    """A dump's (day, model) buckets, built anew on each call (the timeline skipped undecoded, the
    fields after the buckets never looked at). Readers of every transcript's buckets (a usage
    query, a metrics scrape, the totals taking a changed transcript's old buckets out) pay a
    decode each; an idle transcript's view keeps none (~410 of its ~630 bytes)."""
    global decoded_buckets
    decoded_buckets += 1
    # Each bucket's values as a plain tuple (no BucketImage, no __iter__), the model not looked up
    # in the shared table (a day number is: one string per day): the dict is a reader's, dropped
    # after it (~0.5 us a transcript).
    state = _buckets_decoder.decode(blob)
    model = state.model
    return {
        (day_string(b.day), b.model if type(b.model) is str else model): Bucket(*b.values)  # type: ignore[misc]
        for b in state.buckets
    }


#: lifetime count of :func:`buckets_of` calls (tests pin that an idle view decodes none)
decoded_buckets = 0


class _Peeked(msgspec.Struct, array_like=True):
    """The first fields of :class:`~clawstats.core.transcript_image._State`: what :func:`peek` reads
    (the state's other fields follow: an array-like struct ignores trailing items)."""

    version: int
    entries: int
    cost: float | int
    last_call_ms: float | int | None
    base_prompt: int | None
    tl_f: bytes
    tl_i: bytes

    def figures(self) -> Peek:
        cost, last_ms = last_call(self.cost, self.last_call_ms, self.tl_f)
        return Peek(self.entries, cost, last_ms, self.tl_f, self.tl_i, self.base_prompt)


class _Prefix(msgspec.Struct, array_like=True):
    """The first fields of :class:`~clawstats.core.transcript_image._State` with the timeline's values
    skipped undecoded: what the readers below add their fields to."""

    version: int
    entries: int
    cost: float
    last_call_ms: float | None
    base_prompt: int | None
    tl_f: msgspec.Raw
    tl_i: msgspec.Raw


class _Shaped(_Prefix, array_like=True):
    """Up to what :func:`shape_of` reads; the model and buckets are skipped undecoded."""

    model: msgspec.Raw
    buckets: msgspec.Raw
    compactions: tuple[Compaction, ...]
    spawned: tuple[str, ...]


class _DayBucket(msgspec.Struct, array_like=True, gc=False):
    """A :class:`~clawstats.core.transcript_image._DayModel` with its bucket's values as a tuple (in
    :class:`~clawstats.core.usage.BucketImage`'s order, which is :class:`Bucket`'s)."""

    day: str | int
    model: str | int
    values: tuple[int, int, int, int, int, int, float, int, float, int]


class _Bucketed(_Prefix, array_like=True):
    """Up to the buckets (:func:`buckets_of`): a bucket's model 0 is the transcript's ``model``."""

    model: str | None
    buckets: list[_DayBucket]


def _bin_size(raw: msgspec.Raw) -> int:
    """The length of the msgpack ``bin`` value ``raw`` holds, from its header (bin 8/16/32)."""
    data = memoryview(raw)
    head = data[0]
    if head == 0xC4:
        return int(data[1])
    if head == 0xC5:
        return int.from_bytes(data[1:3], "big")
    return int.from_bytes(data[1:5], "big")


_peek_decoder = msgspec.msgpack.Decoder(_Peeked)
_shape_decoder = msgspec.msgpack.Decoder(_Shaped)
_buckets_decoder = msgspec.msgpack.Decoder(_Bucketed)
