"""The usage record: :class:`Bucket`, the calls, tokens and money of one (day, model) of a transcript.

A transcript keeps one bucket per (UTC day, model); totals, usage groups, metrics and OTLP sum
buckets with :meth:`Bucket.add`. In memory a bucket is a slotted dataclass (updated once per call:
a slot write costs a third of a msgspec Struct field write); persisted it is a :class:`BucketImage`,
a msgspec ``Struct(array_like=True)``: named and typed, a plain array in the index (as small as the
positional list both replaced).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import msgspec

#: (model "provider/id", (input, output, cacheRead, cacheWrite)) -> USD of ONE call, None if unpriced
Pricer = Callable[[str, tuple[int, int, int, int]], float | None]


@dataclass(slots=True)
class Bucket:
    """Sums over the calls of one (day, model); mutated only by its transcript's accumulator.

    Money is kept as sums of per-call amounts: a call without a recorded ``usage.cost`` is priced
    when it is read (so a price tier applies to that call, never to a day's sum of calls).
    """

    calls: int = 0
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    #: tokens as OpenClaw totals them: a call's ``totalTokens`` when recorded, else the four summed
    total: int = 0
    #: ``usage.cost.total`` as OpenClaw recorded it, summed in file order
    recorded_usd: float = 0.0
    #: calls without a recorded cost (``missingCostEntries``) ...
    missing: int = 0
    #: ... the USD clawstats computed for those it could price, one call at a time ...
    computed_usd: float = 0.0
    #: ... and how many it could not price (their cost is unknown, not zero)
    unpriced: int = 0

    def add(self, other: Bucket) -> None:
        """Fold another bucket's sums into this one."""
        self.calls += other.calls
        self.input += other.input
        self.output += other.output
        self.cache_read += other.cache_read
        self.cache_write += other.cache_write
        self.total += other.total
        self.recorded_usd += other.recorded_usd
        self.missing += other.missing
        self.computed_usd += other.computed_usd
        self.unpriced += other.unpriced

    def copy(self) -> Bucket:
        return Bucket(*self.image())

    def image(self) -> BucketImage:
        """The persisted form."""
        return BucketImage(
            self.calls,
            self.input,
            self.output,
            self.cache_read,
            self.cache_write,
            self.total,
            self.recorded_usd,
            self.missing,
            self.computed_usd,
            self.unpriced,
        )


class BucketImage(msgspec.Struct, array_like=True, frozen=True):
    """A :class:`Bucket` as persisted (index cache, worker processes): the same fields, in order."""

    calls: int
    input: int
    output: int
    cache_read: int
    cache_write: int
    total: int
    recorded_usd: float
    missing: int
    computed_usd: float
    unpriced: int

    def __iter__(self) -> Iterator[int | float]:
        return iter(msgspec.structs.astuple(self))

    def bucket(self) -> Bucket:
        return Bucket(*self)
