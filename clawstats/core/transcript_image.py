"""The persisted image of a transcript's statistics: the index cache's rows, worker processes' results,
and what an idle tail keeps instead of its :class:`~clawstats.core.transcript.TranscriptStats`.

One msgpack array (``_State``), its version first so another version is rejected cheaply; what a
packed transcript's readers read without loading it comes first (``core/peek.py`` decodes a
prefix of it).
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

import msgspec

from clawstats.core.records import shared
from clawstats.core.segment import Compaction
from clawstats.core.usage import BucketImage, Pricer

if TYPE_CHECKING:
    from clawstats.core.transcript import TranscriptStats

__all__ = ["STATE_VERSION", "check", "dump", "load_into"]

STATE_VERSION = 10  # bump when dump() changes: older cached states are then re-read


def dump(stats: TranscriptStats) -> bytes:
    """The packed image of ``stats`` (the dump it was loaded from when nothing changed it)."""
    if stats.blob is not None:
        return stats.blob
    # Encoded into a buffer and copied out: ``encode()`` returns its grown buffer shrunk in
    # place, which keeps up to a quarter more than its size (~110 bytes a packed transcript).
    buffer = bytearray()
    _state_encoder.encode_into(
        _State(
            version=STATE_VERSION,
            session_id=stats.session_id,
            transcript_version=stats.version,
            entries=stats.entries,
            last_ts=stats.last_ts,
            cost=stats.cost,
            buckets=[_DayModel(day, model, bucket.image()) for (day, model), bucket in stats.buckets.items()],
            messages=(stats.user, stats.assistant, stats.tool_calls, stats.tool_results, stats.errors),
            model=stats.model,
            compactions=stats.compactions,
            resets=stats.resets,
            seg=stats.seg.tobytes(),
            last_prompt=stats.last_prompt,
            last_output=stats.last_output,
            last_call_ms=stats.last_call_ms,
            compacted_after_call=stats.compacted_after_call,
            estimate_at_compaction=stats.estimate_at_compaction,
            chars_after_compaction=stats.chars_after_compaction,
            summary_chars=stats.summary_chars,
            branch_lost=stats.branch_lost,
            tl_f=stats.tl_f.tobytes(),
            tl_i=stats.tl_i.tobytes(),
            current_provider=stats.current_provider,
            current_model_id=stats.current_model_id,
            spawned=stats.spawned,
            base_prompt=stats.base_prompt,
        ),
        buffer,
    )
    return bytes(buffer)


def load_into(stats: TranscriptStats, blob: bytes, price: Pricer | None) -> None:
    """Set every slot of ``stats`` (made by ``__new__``) from ``blob``; raises ValueError on a blob
    of another version."""
    state = _decode(blob)
    # Every slot set once, here, not first by __init__: a cold start loads each of 50,000
    # transcripts (a temporary copy to build its row), ~40% of a load was the double setting.
    stats.session_id, stats.version, stats.entries = state.session_id, state.transcript_version, state.entries
    stats.last_ts, stats.cost = state.last_ts, state.cost
    stats.buckets = {(shared(b.day), shared(b.model)): b.bucket.bucket() for b in state.buckets}
    stats.shared_buckets = False
    stats.user, stats.assistant, stats.tool_calls, stats.tool_results, stats.errors = state.messages
    stats.model = shared(state.model) if state.model is not None else None
    stats.compactions, stats.resets = state.compactions, state.resets
    stats.seg = array("I", state.seg)  # bytes: read as the machine's words (frombytes)
    stats.last_prompt, stats.last_output, stats.last_call_ms = state.last_prompt, state.last_output, state.last_call_ms
    stats.base_prompt = state.base_prompt
    stats.compacted_after_call = state.compacted_after_call
    stats.estimate_at_compaction = state.estimate_at_compaction
    stats.chars_after_compaction, stats.summary_chars = state.chars_after_compaction, state.summary_chars
    stats.branch_lost = state.branch_lost
    stats.last_id = None
    stats.tl_f = array("d", state.tl_f)
    stats.tl_i = array("I", state.tl_i)
    stats.price = price
    stats.current_provider = shared(state.current_provider) if state.current_provider else None
    stats.current_model_id = shared(state.current_model_id) if state.current_model_id else None
    stats.spawned = state.spawned
    stats.blob = blob


def check(blob: bytes) -> None:
    """Raise ValueError when :func:`load_into` would (another version, not a state)."""
    _decode(blob)


def _decode(blob: bytes) -> _State:
    try:
        version = _version_decoder.decode(blob).version
        if version != STATE_VERSION:
            raise ValueError("transcript state of another version")
        return _state_decoder.decode(blob)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # invalid UTF-8 is a ValueError
        raise ValueError(str(exc)) from None


class _DayModel(msgspec.Struct, array_like=True):
    day: str
    model: str
    bucket: BucketImage


class _Version(msgspec.Struct, array_like=True):
    """The first field of every persisted state: read alone to reject other versions cheaply."""

    version: int


class _State(msgspec.Struct, array_like=True):
    """The persisted image of a :class:`TranscriptStats` (index cache, worker processes).

    What a packed transcript's readers read without loading it comes first, in this order
    (``core/peek.py`` decodes a prefix: the fields after it are never looked at): the figures of
    :func:`~clawstats.core.peek.peek`, then the view's part (:func:`~clawstats.core.peek.shape_of`).
    """

    version: int
    entries: int
    cost: float
    last_call_ms: float | None
    base_prompt: int | None
    tl_f: bytes
    tl_i: bytes
    buckets: list[_DayModel]
    compactions: tuple[Compaction, ...]
    spawned: tuple[str, ...]
    session_id: str | None
    transcript_version: int | None
    last_ts: str | float | None
    messages: tuple[int, int, int, int, int]
    model: str | None
    resets: int
    seg: bytes
    last_prompt: int | None
    last_output: int
    compacted_after_call: bool
    estimate_at_compaction: int | None
    chars_after_compaction: int
    summary_chars: int
    branch_lost: bool
    current_provider: str | None
    current_model_id: str | None


_state_encoder = msgspec.msgpack.Encoder()
_version_decoder = msgspec.msgpack.Decoder(_Version)
_state_decoder = msgspec.msgpack.Decoder(_State)
