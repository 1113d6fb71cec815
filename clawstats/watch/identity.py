"""A file's identity as a :class:`~clawstats.watch.tail.Tail` keeps it: the version of the file
(``FileId``: device, inode, size, mtime) and a digest of its first bytes, in one bytes object.

One object instead of a ``FileId`` with its three large ints (~140 bytes) and the digest's own
bytes object (~56): ~88 bytes a transcript, ~5 MB at 50,000 sessions.
"""

from __future__ import annotations

import hashlib
import os
import struct

import msgspec

__all__ = ["HEAD_BYTES", "FileId", "Identified", "head_digest"]

HEAD_BYTES = 256


def head_digest(head: bytes) -> bytes:
    """What a tail keeps of a file's first bytes (up to ``HEAD_BYTES``): their length (2 bytes,
    big-endian) and an 8-byte BLAKE2b digest. 10 bytes instead of 256 per transcript; a file
    rewritten in place is still told from one that only grew (a chance in 2**64 of not; 8 bytes
    more put the identity in the next 16-byte size class of the allocator: 16 bytes a tail)."""
    return len(head).to_bytes(2, "big") + hashlib.blake2b(head, digest_size=8).digest()


#: One int object per device number (a new one per stat otherwise: 32 bytes a tail).
_DEVICES: dict[int, int] = {}
#: A :class:`FileId` as a tail keeps it: dev and inode unsigned, size and mtime signed (the
#: persisted index marks "read past the offset" with -1).
_ID = struct.Struct("<QQqq")
ID_BYTES = _ID.size
_SIZE = struct.Struct("<q")  # the size, at 16 in a packed FileId
#: Identities without a head digest (an SQLite store's cursors all carry their database's), one
#: object each; a bounded table: a store has a few databases.
_SHARED_IDS: dict[bytes, bytes] = {}
_SHARED_IDS_MAX = 256


def size_of(identity: bytes) -> int:
    """The file size in an identity that holds a packed FileId (its first ``ID_BYTES``)."""
    return int(_SIZE.unpack_from(identity, 16)[0])


class FileId(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What identifies one version of a file: a change in any field means "look again"."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileId:
        dev = _DEVICES.setdefault(st.st_dev, st.st_dev)  # every file of a store is on one or two devices
        return cls(dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def packed(self) -> bytes:
        return _ID.pack(self.dev, self.ino, self.size, self.mtime_ns)

    @staticmethod
    def packed_of(st: os.stat_result) -> bytes:
        """:meth:`packed` of :meth:`of` without the FileId (a poll of an unchanged file)."""
        return _ID.pack(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class Identified:
    """The identity of a tail and its two readings, ``file_id`` and ``head``."""

    __slots__ = ("_ident",)

    def __init__(self) -> None:
        # the packed FileId (none before the first poll) then the head digest (none until some
        # bytes were read); None: in the packed image (a tail's ``_state``, see ``identity``)
        self._ident: bytes | None = b""

    @property
    def identity(self) -> bytes:
        """The packed FileId then the head digest (see :func:`head_digest`)."""
        ident = self._ident
        assert ident is not None  # (a subclass keeping it elsewhere reads it there)
        return ident

    @identity.setter
    def identity(self, identity: bytes) -> None:
        self._ident = identity

    @property
    def file_id(self) -> FileId | None:
        """The file's identity at the last poll; None before the first (or to force a read)."""
        ident = self.identity
        return FileId(*_ID.unpack_from(ident)) if len(ident) >= ID_BYTES else None

    @file_id.setter
    def file_id(self, file_id: FileId | None) -> None:
        self._identify(file_id.packed() if file_id is not None else b"", self.head)

    @property
    def identified(self) -> bool:
        """``file_id is not None`` without making the FileId (a scan asks it of every tail polled)."""
        return len(self.identity) >= ID_BYTES

    @property
    def head(self) -> bytes:
        """:func:`head_digest` of the file's first bytes; empty until some were read."""
        ident = self.identity
        return ident[ID_BYTES:] if len(ident) >= ID_BYTES else ident

    @head.setter
    def head(self, head: bytes) -> None:
        ident = self.identity
        self._identify(ident[:ID_BYTES] if len(ident) >= ID_BYTES else b"", head)

    def _identify(self, packed_id: bytes, head: bytes) -> None:
        ident = packed_id + head
        if not head and ident:
            if len(_SHARED_IDS) >= _SHARED_IDS_MAX:
                _SHARED_IDS.clear()
            ident = _SHARED_IDS.setdefault(ident, ident)
        self._ident = ident

    def replaced(self, fd: int, st: os.stat_result, end: int) -> bool:
        """Whether the file open at ``fd`` (``st`` its stat) is another file than the one read up
        to ``end`` (the offset and a pending partial line): another inode, shorter, another head."""
        if not self.identity:  # never read
            return False
        old = self.file_id
        if old is None:
            return False
        if (old.dev, old.ino) != (st.st_dev, st.st_ino):
            return True
        if st.st_size < end:
            return True
        head = self.head
        return bool(head) and head_digest(os.pread(fd, int.from_bytes(head[:2], "big"), 0)) != head
