"""What a :class:`~clawstats.watch.tail.Tail` keeps between reads (its base, ``TailState``): the
statistics, or their packed image while the transcript is idle, read meanwhile without unpacking
(:meth:`TailState.peek`, :meth:`TailState.view`, :meth:`TailState.current`); the offset; the
file's identity; what a line being written leaves (a partial line, an oversized line being
skipped, an unterminated last line) and the polls it has been idle.

An idle file read to its end keeps little beyond its image: its offset as the size in its
identity (``AT_SIZE``: no int object of its own), its identity as the image's extra item (no
bytes object of its own: ``core/transcript_image.py``'s ``with_extra``, skipped by every reader of
an image), nothing of a line being written (``_mid`` None); 9 slots in all with the tail's own.
The reading itself (``poll``) is the tail's.
"""

from __future__ import annotations

from array import array

from clawstats.core.peek import Peek, peek
from clawstats.core.snapshot import TranscriptView
from clawstats.core.transcript import TranscriptStats
from clawstats.core.transcript_image import STATE_FIELDS, extra_of, with_extra, without_extra
from clawstats.watch.identity import ID_BYTES, Identified, size_of

__all__ = ["AT_SIZE", "IDLE_MID", "IDLE_POLLS", "QUIET_MIDS", "TailState"]

#: Polls finding a file unchanged before its statistics are packed. The safety sweep stats every
#: transcript once a sweep (and an event names a file as it is written), so two such polls mean
#: no write for at least a sweep: a session being written to is polled with new bytes far more
#: often and stays unpacked (an append never pays a dump and a load), an idle one packs.
IDLE_POLLS = 2
#: A tail's ``_offset`` when it is the size in its identity (``TailState.share_offset``)
AT_SIZE = -1
#: an image's item count when it carries an extra item (the identity: ``fold_identity``)
_FOLDED = (STATE_FIELDS + 1).to_bytes(2, "big")
#: A tail's ``_mid`` with nothing mid-line: idle (None), or polled 0 or 1 times unchanged (shared).
IDLE_MID: tuple[bytes, bool, bool, int] = (b"", False, False, IDLE_POLLS)
QUIET_MIDS: tuple[tuple[bytes, bool, bool, int], ...] = tuple((b"", False, False, n) for n in range(IDLE_POLLS))


class TailState(Identified):
    """The statistics (packed or not), offset, identity and mid-line state of a tail."""

    __slots__ = ("_state", "_offset", "_mid")

    _state: TranscriptStats | bytes  # the statistics, or their dump while idle (packed)
    _offset: int  # end of the last complete line consumed; AT_SIZE: the size in the identity
    _mid: tuple[bytes, bool, bool, int] | None  # (pending, skipping, open_line, idle); None: idle
    generation: int  # (the tail's) bumped when the statistics start over

    def _load(self, blob: bytes) -> TranscriptStats:
        raise NotImplementedError  # (the tail's: it counts its loads)

    def _keeps_segment(self) -> bool:
        raise NotImplementedError  # (the tail's: whether its file is small)

    @property
    def offset(self) -> int:
        """End of the last complete line consumed (of a SQLite cursor: the next event's seq)."""
        offset = self._offset
        return offset if offset != AT_SIZE else size_of(self.identity)

    @offset.setter
    def offset(self, offset: int) -> None:
        self._offset = offset

    def _identify(self, packed_id: bytes, head: bytes) -> None:
        if self._offset == AT_SIZE:  # the offset was the size of the identity going now
            self._offset = self.offset
        super()._identify(packed_id, head)

    @property
    def identity(self) -> bytes:
        """The file id and head digest (see watch/identity.py); an idle file's kept at the end of
        its packed image (no bytes object of its own: ~80 bytes a tail, for ~45 more of the image)."""
        ident = self._ident
        if ident is None:
            state = self._state
            assert type(state) is bytes
            return extra_of(state)
        return ident

    @identity.setter
    def identity(self, identity: bytes) -> None:
        self._ident = identity

    @property
    def identified(self) -> bool:
        ident = self._ident
        return ident is None or len(ident) >= ID_BYTES  # (kept in the image: it has one)

    def fold_identity(self) -> None:
        """Keep the identity in the packed image (a file read, packed: most of a store), as the
        image carries it already (a worker's, the persisted index's) or in a copy; the next
        change of the statistics takes it back first (``_unfold``)."""
        state, ident = self._state, self._foldable()
        if ident and type(state) is bytes:
            folded = with_extra(state, ident)
            if folded is not None:
                self._state = folded
                self._ident = None

    def _foldable(self) -> bytes:
        """The identity, when the packed image is to keep it (else b"")."""
        ident, mid = self._ident, self._mid
        if ident is None or len(ident) <= ID_BYTES:
            return b""  # (kept there already; a SQLite cursor's has no head: one shared object)
        if mid is not None and mid[0]:
            return b""  # its image is the one its view holds, whose identity was another: no copy mid-line
        return ident

    def _unfold(self) -> None:
        """The identity out of the packed image, before the image goes."""
        if self._ident is None:
            self._ident = self.identity

    def kept(self) -> tuple[bytes, int, bytes, tuple[bytes, bool, bool, int]]:
        """The tail as it keeps it, for its image (``watch/tail_image.py``): the packed image (else
        the dump), the offset (maybe AT_SIZE), the identity (b"": in the image), the mid-line state."""
        state, ident = self._state, self._ident
        image = state if type(state) is bytes else self.stats.dump()
        return image, self._offset, ident if ident is not None else b"", self._mid or IDLE_MID

    def keep(self, offset: int, identity: bytes, mid: tuple[bytes, bool, bool, int]) -> None:
        """Inverse of :meth:`kept`, on a tail made of its image: an identity given is folded into
        the image when it can be (:meth:`compact`); none, it is the one there (or none at all)."""
        self._offset = offset
        self._ident = identity or None
        self._set_mid(*mid)
        if len(identity) > ID_BYTES:
            self.compact()
        elif identity:  # no head (a SQLite cursor's): one object per database (``_identify``)
            self._identify(identity, b"")

    def compact(self) -> None:
        """What an idle file's tail keeps once read to its end: the offset as the identity's size
        (:meth:`share_offset`), the identity in the packed image (:meth:`fold_identity`)."""
        self.share_offset()
        self.fold_identity()

    def share_offset(self) -> None:
        """Keep the offset as the identity's size when they are equal (a file read to its end,
        nothing pending: most of a store): no int object of its own (32 bytes a tail); a new
        identity takes it back first (``_identify``)."""
        offset = self._offset
        if offset > 0:
            ident = self.identity
            if len(ident) >= ID_BYTES and size_of(ident) == offset:
                self._offset = AT_SIZE

    @property
    def pending(self) -> bytes:
        """A trailing partial line (OpenClaw may be mid-write), not consumed yet."""
        mid = self._mid
        return mid[0] if mid is not None else b""

    @pending.setter
    def pending(self, pending: bytes) -> None:
        mid = self._mid or IDLE_MID
        self._set_mid(pending, mid[1], mid[2], mid[3])

    @property
    def skipping(self) -> bool:
        """Inside an oversized line: bytes are dropped up to its newline."""
        mid = self._mid
        return mid[1] if mid is not None else False

    @skipping.setter
    def skipping(self, skipping: bool) -> None:
        mid = self._mid or IDLE_MID
        self._set_mid(mid[0], skipping, mid[2], mid[3])

    @property
    def open_line(self) -> bool:
        """The last line consumed had no newline yet (a complete JSON line at the end of the
        file): its newline, when it comes, is skipped, not counted as a second line."""
        mid = self._mid
        return mid[2] if mid is not None else False

    @open_line.setter
    def open_line(self, open_line: bool) -> None:
        mid = self._mid or IDLE_MID
        self._set_mid(mid[0], mid[1], open_line, mid[3])

    @property
    def idle(self) -> int:
        """Polls that found the file unchanged since it last changed (up to ``IDLE_POLLS``)."""
        mid = self._mid
        return mid[3] if mid is not None else IDLE_POLLS

    @idle.setter
    def idle(self, idle: int) -> None:
        mid = self._mid or IDLE_MID
        self._set_mid(mid[0], mid[1], mid[2], idle)

    def _set_mid(self, pending: bytes, skipping: bool, open_line: bool, idle: int) -> None:
        if pending or skipping or open_line:
            self._mid = (pending, skipping, open_line, idle)
        elif idle >= IDLE_POLLS:
            self._mid = None
        else:
            self._mid = QUIET_MIDS[idle]  # (shared: a tail read once and packed keeps no tuple of its own)

    # -- the statistics, packed or not ------------------------------------------------------------

    @property
    def stats(self) -> TranscriptStats:
        """The live statistics, unpacked (and kept so) if packed: for the writer about to change
        them. Readers use :meth:`peek` or :meth:`current`."""
        state = self._state
        if type(state) is bytes:
            self._unfold()
            state = self._state = self._load(without_extra(state))  # (its blob: the statistics' own)
        assert isinstance(state, TranscriptStats)
        return state

    @stats.setter
    def stats(self, stats: TranscriptStats) -> None:  # rebuilt, equal (a SQLite session read again)
        self._unfold()
        self._state = stats

    @property
    def packed(self) -> bool:
        return type(self._state) is bytes

    def current(self) -> TranscriptStats:
        """The statistics to read now: the live ones, or a temporary copy of packed ones."""
        state = self._state
        return state if isinstance(state, TranscriptStats) else self._load(state)

    def peek(self) -> Peek:
        """Cost, entries, base prompt, last call and timeline, without unpacking."""
        state = self._state
        return Peek.of(state) if isinstance(state, TranscriptStats) else peek(state)

    def view(self, agent_id: str) -> TranscriptView:
        """The frozen view of the statistics as they are now (packed: its part of the dump read,
        nothing unpacked)."""
        state = self._state
        if isinstance(state, TranscriptStats):
            return TranscriptView.of(agent_id, state, self, self.generation)
        return TranscriptView.packed(agent_id, state, self, self.generation)

    def timeline_at(self, generation: int, calls: int) -> tuple[array[float], array[int], array[float], array[int]]:
        """The first ``calls`` calls of the statistics of ``generation`` (a view's; none once the
        file was read again from the start)."""
        if generation != self.generation:
            return array("d"), array("I"), array("d"), array("I")
        return self.peek().timeline(calls)

    def dump(self) -> bytes:
        """The statistics' dump (packed: as kept, no load and dump, without the identity it keeps)."""
        state = self._state
        return without_extra(state) if type(state) is bytes else self.stats.dump()

    def image(self) -> bytes:
        """What the persisted index and a worker's image keep: the packed image as kept (with the
        identity an idle file keeps in it: every reader of an image skips it), else the dump."""
        state = self._state
        return state if type(state) is bytes else self.stats.dump()

    def pack(self, segment: bool | None = None) -> None:
        """Keep the statistics as their dump (free when they were loaded from it, unchanged); without
        their segment when ``segment`` is False or, None, the file is small (a SQLite cursor says)."""
        state = self._state
        if isinstance(state, TranscriptStats):
            ident = self._foldable()
            self._state = blob = state.dump(self._keeps_segment() if segment is None else segment, ident)
            if ident and blob[1:3] == _FOLDED:  # (in the dump's one copy out)
                self._ident = None

    def release(self) -> None:
        """A reader is done with the statistics: pack them again when they were only unpacked to
        be read, or the transcript is idle (a file: only :meth:`poll` counts ``idle``)."""
        state = self._state
        if isinstance(state, TranscriptStats) and (state.blob is not None or self.idle >= IDLE_POLLS):
            self._state = state.dump(state.blob is not None or self._keeps_segment())  # (its blob as it is)
            self.fold_identity()
