"""A tail as it travels between processes: a worker's whole read of one file, and the picklable
image of the :class:`~clawstats.watch.tail.Tail` it hands back (its statistics as their packed
dump), adopted by the scanning process without unpacking."""

from __future__ import annotations

import msgspec

from clawstats.core.health import HealthLog
from clawstats.core.usage import Pricer
from clawstats.watch.tail import Tail

__all__ = ["TailImage", "adopt", "export", "read_whole"]


def read_whole(path: str, max_line_bytes: int, price: Pricer | None = None) -> tuple[Tail, HealthLog]:
    """Read one file from scratch into a new Tail (a worker process runs this on cold scans)."""
    tail, health = Tail(path, price), HealthLog()
    tail.poll(health, max_line_bytes)
    return tail, health


class TailImage(msgspec.Struct, frozen=True, array_like=True):
    """A picklable image of a :class:`Tail` (its stats as their compact dump): what a worker
    process hands back after a cold read."""

    path: str
    state: bytes
    offset: int
    identity: bytes  # file id and head digest (see watch/identity.py)
    pending: bytes
    skipping: bool
    open_line: bool


def export(tail: Tail) -> TailImage:
    return TailImage(
        tail.path,
        tail.image(),
        tail.offset,
        tail.identity,
        tail.pending,
        tail.skipping,
        tail.open_line,
    )


def adopt(image: TailImage, price: Pricer | None = None) -> Tail:
    """Inverse of :func:`export`, packed: the image's dump is the packed state (its view is read
    from it, its row from a temporary copy), so a cold read of 50,000 never holds all their
    statistics at once (RSS at ready 298 -> ~260 MiB for a server's first read)."""
    tail = Tail(image.path, price, image.state)
    tail.offset = image.offset
    tail.identity = image.identity
    tail.compact()
    if image.pending or image.skipping or image.open_line:  # (most have none: no tuple of their own)
        tail.pending = image.pending
        tail.skipping = image.skipping
        tail.open_line = image.open_line
    tail.revision = 1
    return tail
