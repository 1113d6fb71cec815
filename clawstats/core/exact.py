"""Exact sums of buckets: :class:`Sum`, whose money is kept as an integer count of 2**-1074 USD.

Every finite float is a whole multiple of 2**-1074, so sums of them kept in those units are exact:
a transcript's buckets can be taken out of a sum again (a transcript that changed) and the sum
is the same whatever the order of additions and removals. Only :meth:`Sum.bucket` rounds, once,
to the float nearest the exact sum (``int / int`` is correctly rounded). Tokens and calls are
integers already.
"""

from __future__ import annotations

import math

from clawstats.core.usage import Bucket

_BITS = 1074  # 2**-1074: the smallest subnormal double, of which every finite double is a multiple
_ONE = 1 << _BITS
# Infinity and NaN (a sum of huge costs can overflow a transcript's float) are counted in units
# far above any finite sum (< 2**2098 each, fewer than 2**60 of them), so they too come out again.
_INF = 1 << 3000
_NAN = 1 << 6000


def exact(usd: float) -> int:
    """``usd`` in units of 2**-1074, exactly (infinity and NaN as their own large units)."""
    try:
        numerator, denominator = usd.as_integer_ratio()  # denominator: a power of two <= 2**1074
    except OverflowError:
        return _INF if usd > 0 else -_INF
    except ValueError:
        return _NAN
    return numerator << (_BITS + 1 - denominator.bit_length())


def rounded(units: int) -> float:
    """The float nearest ``units`` * 2**-1074."""
    if abs(units) >= _NAN >> 1:
        return math.nan
    if abs(units) >= _INF >> 1:  # costs are never negative: +inf and -inf never meet in one sum
        return math.inf if units > 0 else -math.inf
    try:
        return units / _ONE
    except OverflowError:
        return math.inf if units > 0 else -math.inf


class Sum:
    """Buckets added and taken out again; ``buckets`` counts those in it (0: it is empty)."""

    __slots__ = (
        "buckets",
        "calls",
        "input",
        "output",
        "cache_read",
        "cache_write",
        "total",
        "recorded_units",
        "missing",
        "computed_units",
        "unpriced",
    )

    def __init__(self) -> None:
        self.buckets = 0
        self.calls = 0
        self.input = 0
        self.output = 0
        self.cache_read = 0
        self.cache_write = 0
        self.total = 0
        self.recorded_units = 0
        self.missing = 0
        self.computed_units = 0
        self.unpriced = 0

    def add(self, bucket: Bucket, recorded_units: int, computed_units: int) -> None:
        """Add ``bucket``, whose money in units (:func:`exact`) the caller converted once."""
        self.buckets += 1
        self.calls += bucket.calls
        self.input += bucket.input
        self.output += bucket.output
        self.cache_read += bucket.cache_read
        self.cache_write += bucket.cache_write
        self.total += bucket.total
        self.recorded_units += recorded_units
        self.missing += bucket.missing
        self.computed_units += computed_units
        self.unpriced += bucket.unpriced

    def take(self, bucket: Bucket, recorded_units: int, computed_units: int) -> None:
        """Take out ``bucket`` (added before, with the same values)."""
        self.buckets -= 1
        self.calls -= bucket.calls
        self.input -= bucket.input
        self.output -= bucket.output
        self.cache_read -= bucket.cache_read
        self.cache_write -= bucket.cache_write
        self.total -= bucket.total
        self.recorded_units -= recorded_units
        self.missing -= bucket.missing
        self.computed_units -= computed_units
        self.unpriced -= bucket.unpriced

    def bucket(self) -> Bucket:
        """The sum as a bucket, its money rounded once to the nearest float."""
        return Bucket(
            calls=self.calls,
            input=self.input,
            output=self.output,
            cache_read=self.cache_read,
            cache_write=self.cache_write,
            total=self.total,
            recorded_usd=rounded(self.recorded_units),
            missing=self.missing,
            computed_usd=rounded(self.computed_units),
            unpriced=self.unpriced,
        )
