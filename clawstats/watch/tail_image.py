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
    state: bytes  # the packed image (an idle file's carries its identity: see watch/tail.py)
    offset: int  # AT_SIZE: the size in the identity
    identity: bytes  # file id and head digest (see watch/identity.py); b"": in ``state``
    pending: bytes
    skipping: bool
    open_line: bool


def export(tail: Tail) -> TailImage:
    state, offset, identity, (pending, skipping, open_line, _idle) = tail.kept()
    return TailImage(tail.path, state, offset, identity, pending, skipping, open_line)


def adopt(image: TailImage, price: Pricer | None = None) -> Tail:
    """Inverse of :func:`export`, packed: the image's dump is the packed state (its view is read
    from it, its row from a temporary copy), so a cold read of 50,000 never holds all their
    statistics at once (RSS at ready 298 -> ~260 MiB for a server's first read)."""
    tail = Tail(image.path, price, image.state)
    tail.keep(image.offset, image.identity, (image.pending, image.skipping, image.open_line, 0))
    tail.revision = 1
    return tail
