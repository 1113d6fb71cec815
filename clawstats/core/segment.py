"""The context segment of one transcript: what lets us tell the context in use, compactions included.

The entries of the active branch since the last compaction are kept as (id hash, characters,
prompt tokens) triples in one compact array, without any message text. From them a compaction's
estimate is made (OpenClaw reports a stale or missing number right after one: the prompt before
it, minus the entries it dropped, plus its summary), a branch switch (an entry whose parent is not
the previous entry) moves back to the parent, and a reset (SQLite store) starts a fresh context.
Semantics: ``shared/docs/openclaw-session-store.md`` §4.

:class:`ContextSegment` is the base of :class:`~clawstats.core.transcript.TranscriptStats` (slots
only, no object of its own: 50,000 of them live in a server); the fold pushes the triples inline.
"""

from __future__ import annotations

import zlib
from array import array

import msgspec

from clawstats.core.records import Line, as_int, iso_to_ms

__all__ = ["CHARS_PER_TOKEN", "SEG_WIDTH", "Compaction", "ContextSegment", "id_hash"]

CHARS_PER_TOKEN = 4
#: One ``seg`` entry: (id hash, characters, prompt tokens).
SEG_WIDTH = 3


def id_hash(value: str | int | None) -> int:
    """A stable 32-bit key for an entry id (8-hex ids in 2026.7, UUIDs in 2026.9)."""
    if value is None:
        return 0
    return zlib.crc32(value.encode() if type(value) is str else str(value).encode()) or 1


class Compaction(msgspec.Struct, frozen=True, array_like=True, gc=False):
    at_ms: float | None
    tokens_before: int | None
    tokens_after: int | None
    #: our estimate of the context right after it (system prompt and tools included)
    estimate: int | None
    from_hook: bool


class ContextSegment:
    """The active branch since the last compaction and what the context figures need of it."""

    __slots__ = (
        "seg",
        "seg_chars",
        "last_id",
        "last_prompt",
        "base_prompt",
        "last_output",
        "compacted_after_call",
        "estimate_at_compaction",
        "chars_after_compaction",
        "summary_chars",
        "branch_lost",
        "compactions",
        "resets",
    )
    seg: array[int]
    #: None while ``seg`` is kept; else the image these statistics were loaded from was written
    #: without its segment (an idle small transcript's, ``core/transcript_image.py``): what
    #: :meth:`chars_since_reset` answers. Such statistics are read, never continued.
    seg_chars: int | None
    last_id: str | int | None
    last_prompt: int | None
    #: system prompt + tools + bootstrap: the first call's prompt minus what came before it
    base_prompt: int | None
    last_output: int
    compacted_after_call: bool
    estimate_at_compaction: int | None
    chars_after_compaction: int
    summary_chars: int
    branch_lost: bool
    compactions: tuple[Compaction, ...]
    resets: int

    def __init__(self) -> None:
        self.seg = array("I")  # SEG_WIDTH numbers per entry of the active branch since the last compaction
        self.seg_chars = None
        self.last_id = None  # raw id of the last entry (fast path of _follow_branch; None when settled)
        self.last_prompt = None
        self.base_prompt = None
        self.last_output = 0
        self.compacted_after_call = False
        self.estimate_at_compaction = None
        self.chars_after_compaction = 0
        self.summary_chars = 0
        self.branch_lost = False
        # a tuple, not a list: most transcripts never compact, and () is one shared object
        self.compactions = ()
        self.resets = 0

    def _continuable(self) -> None:
        """Raise ValueError for statistics loaded without their segment: the branch, compactions
        and estimates of new entries need it (their owner rebuilds them from their source)."""
        if self.seg_chars is not None:
            raise ValueError("statistics loaded without their context segment cannot be continued")

    def _compaction(self, line: Line) -> None:
        if self.compacted_after_call:
            base = self.estimate_at_compaction
            if base is not None:
                base += self.chars_after_compaction // CHARS_PER_TOKEN
        elif self.last_prompt is not None:
            base = self.last_prompt + self.last_output + self._chars_since_call() // CHARS_PER_TOKEN
        else:
            base = as_int(line.tokensBefore) or None
        seg = self.seg
        keep_from = self._index_of(id_hash(line.firstKeptEntryId)) if line.firstKeptEntryId else -1
        if keep_from < 0:
            keep_from = len(seg) // SEG_WIDTH  # kept entries unknown: assume all dropped
        dropped = sum(seg[1 : keep_from * SEG_WIDTH : SEG_WIDTH]) + self.summary_chars
        self.summary_chars = max(len(line.summary) - 2, 0)
        estimate = None
        if base is not None:
            estimate = max(base - (dropped - self.summary_chars) // CHARS_PER_TOKEN, 0)
        del seg[: keep_from * SEG_WIDTH]
        at_ms = iso_to_ms(line.timestamp)
        after = as_int(line.tokensAfter) if line.tokensAfter is not None else None
        before = as_int(line.tokensBefore) if line.tokensBefore is not None else None
        self.compactions = (*self.compactions, Compaction(at_ms, before, after, estimate, bool(line.fromHook)))
        self.compacted_after_call = True
        self.estimate_at_compaction = estimate
        self.chars_after_compaction = 0

    def _reset(self) -> None:
        """SQLite store: a ``reset`` event starts a fresh context in the same session."""
        self.resets += 1
        del self.seg[:]
        self.last_prompt = None
        self.last_output = 0
        self.compacted_after_call = False
        self.estimate_at_compaction = None
        self.chars_after_compaction = self.summary_chars = 0

    def _follow_branch(self, parent: str | int | None) -> None:
        """A parent other than the previous entry moves the active branch back to it."""
        if parent is None or parent == self.last_id:
            return
        seg = self.seg
        if not seg:
            return
        parent_hash = id_hash(parent)
        if seg[-SEG_WIDTH] == parent_hash:
            return
        index = self._index_of(parent_hash)
        if index < 0:
            self.branch_lost = True  # parent before the segment: context below is best effort
            return
        del seg[(index + 1) * SEG_WIDTH :]
        for at in range(len(seg) - 1, -1, -SEG_WIDTH):  # the prompts, newest first
            if seg[at]:
                self.last_prompt = seg[at]
                self.compacted_after_call = False
                return

    def _index_of(self, entry_hash: int) -> int:
        """The segment index of the newest entry with this id hash, or -1."""
        seg = self.seg
        for at in range(len(seg) - SEG_WIDTH, -1, -SEG_WIDTH):
            if seg[at] == entry_hash:
                return at // SEG_WIDTH
        return -1

    def _chars_since_call(self) -> int:
        seg = self.seg
        total = 0
        for at in range(len(seg) - 1, -1, -SEG_WIDTH):
            if seg[at]:
                break
            total += seg[at - 1]
        return total

    # -- reading ---------------------------------------------------------------------------

    def context(self) -> tuple[int | None, str]:
        """Context in use per the transcript alone: (tokens, "transcript"|"estimate"|"unknown")."""
        if self.compacted_after_call:
            if self.estimate_at_compaction is None:
                return None, "unknown"
            return self.estimate_at_compaction + self.chars_after_compaction // CHARS_PER_TOKEN, "estimate"
        if self.last_prompt is not None:
            return self.last_prompt, "transcript"
        if self.base_prompt is not None:  # reset (SQLite store), no call since: base + what was written
            return self.base_prompt + self.chars_since_reset() // CHARS_PER_TOKEN, "estimate"
        return None, "unknown"

    def chars_since_reset(self) -> int:
        """Characters of the entries of the current context (since the start or the last reset)."""
        if self.seg_chars is not None:  # loaded from an image without its segment
            return self.seg_chars
        return sum(self.seg[1::SEG_WIDTH])
