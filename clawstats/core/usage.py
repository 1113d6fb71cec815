"""The usage record: :class:`Bucket`, the calls, tokens and money of one (day, model) of a transcript.

A transcript keeps one bucket per (UTC day, model); totals, usage groups, metrics and OTLP sum
buckets with :meth:`Bucket.add`. The record is a msgspec ``Struct(array_like=True)``: named and
typed in code, a plain array in the persisted index (as small as the positional list it replaced).
"""

from __future__ import annotations

import msgspec

#: The four token counts of a call, in OpenClaw's order: (metric label, Bucket field).
TOKEN_FIELDS = (("input", "input"), ("output", "output"), ("cache_read", "cache_read"), ("cache_write", "cache_write"))


class Bucket(msgspec.Struct, array_like=True):
    """Sums over the calls of one (day, model); mutated only by its transcript's accumulator."""

    calls: int = 0
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    #: ``usage.cost.total`` as OpenClaw recorded it, summed in file order
    recorded_usd: float = 0.0
    #: calls without a recorded cost, and their tokens (priced when the groups are built)
    missing: int = 0
    missing_input: int = 0
    missing_output: int = 0
    missing_cache_read: int = 0
    missing_cache_write: int = 0

    def add(self, other: Bucket) -> None:
        """Fold another bucket's sums into this one."""
        self.calls += other.calls
        self.input += other.input
        self.output += other.output
        self.cache_read += other.cache_read
        self.cache_write += other.cache_write
        self.recorded_usd += other.recorded_usd
        self.missing += other.missing
        self.missing_input += other.missing_input
        self.missing_output += other.missing_output
        self.missing_cache_read += other.missing_cache_read
        self.missing_cache_write += other.missing_cache_write

    def copy(self) -> Bucket:
        return msgspec.structs.replace(self)

    @property
    def missing_tokens(self) -> tuple[int, int, int, int]:
        return (self.missing_input, self.missing_output, self.missing_cache_read, self.missing_cache_write)

    def tokens(self, field: str) -> int:
        """One token count by its field name (one of ``TOKEN_FIELDS``)."""
        value: int = getattr(self, field)
        return value
