"""Reading a few figures of a transcript's dump (``TranscriptStats.dump()``) without loading it.

An idle transcript is kept packed (its dump, not its ``TranscriptStats``); the readers that only
need its cost, entry count, base prompt, last call or timeline read them here: the other fields
are skipped undecoded (``msgspec.Raw``) and nothing is kept.
"""

from __future__ import annotations

from array import array

import msgspec

__all__ = ["Peek", "peek"]


def peek(blob: bytes) -> Peek:
    """The figures readers of an idle transcript need (cost, entries, the base prompt, the last
    call, the timeline) read from its dump, every other field skipped undecoded: about a third
    of a :meth:`~clawstats.core.transcript.TranscriptStats.load`, and nothing kept."""
    return _peek_decoder.decode(blob).figures()


class Peek(msgspec.Struct, frozen=True, gc=False):
    """What :func:`peek` reads of a transcript's state."""

    entries: int
    cost: float
    last_call_ms: float | None
    tl_f: bytes | array[float]  # the timeline as dumped (native-endian doubles, 32-bit ints)
    tl_i: bytes | array[int]
    base_prompt: int | None

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


class _Peeked(msgspec.Struct, array_like=True):
    """:class:`~clawstats.core.transcript._State` with the fields :func:`peek` skips left undecoded (``Raw``); its last
    field is ``base_prompt``, the state's last (trailing fields would be ignored)."""

    version: int
    session_id: msgspec.Raw
    transcript_version: msgspec.Raw
    entries: int
    last_ts: msgspec.Raw
    cost: float
    buckets: msgspec.Raw
    messages: msgspec.Raw
    model: msgspec.Raw
    compactions: msgspec.Raw
    resets: msgspec.Raw
    seg: msgspec.Raw
    last_prompt: msgspec.Raw
    last_output: msgspec.Raw
    last_call_ms: float | None
    compacted_after_call: msgspec.Raw
    estimate_at_compaction: msgspec.Raw
    chars_after_compaction: msgspec.Raw
    summary_chars: msgspec.Raw
    branch_lost: msgspec.Raw
    tl_f: bytes
    tl_i: bytes
    current_provider: msgspec.Raw
    current_model_id: msgspec.Raw
    spawned: msgspec.Raw
    base_prompt: int | None

    def figures(self) -> Peek:
        return Peek(self.entries, self.cost, self.last_call_ms, self.tl_f, self.tl_i, self.base_prompt)


_peek_decoder = msgspec.msgpack.Decoder(_Peeked)
