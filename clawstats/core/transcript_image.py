"""The persisted image of a transcript's statistics: the index cache's rows, worker processes' results,
and what an idle tail keeps instead of its :class:`~clawstats.core.transcript.TranscriptStats`.

One msgpack array (``_State``), its version first so another version is rejected cheaply; what a
packed transcript's readers read without loading it comes first (``core/peek.py`` decodes a
prefix of it). An idle transcript is kept as this image (50,000 of them in a server), so what most
transcripts repeat is not written again: a bucket's day as days since the epoch, its model as 0
when it is the transcript's model, the current provider and model id as 0 when they spell it, the
cost and last call's time as 0 when they are the timeline's last point, and a UUID session id as
its 16 bytes. An image may carry one opaque item after its fields (``with_extra``: an idle file's
tail keeps its identity there), which every reader skips.
"""

from __future__ import annotations

import math
import struct
from array import array
from datetime import date, timedelta
from typing import TYPE_CHECKING

import msgspec

from clawstats.core.records import SHARED_MAX, shared
from clawstats.core.segment import Compaction
from clawstats.core.usage import BucketImage, Pricer

if TYPE_CHECKING:
    from clawstats.core.transcript import TranscriptStats

__all__ = [
    "SAME",
    "STATE_FIELDS",
    "STATE_VERSION",
    "check",
    "day_number",
    "day_string",
    "dump",
    "extra_of",
    "last_call",
    "load_into",
    "with_extra",
    "without_extra",
]

STATE_VERSION = 12  # bump when dump() changes: older cached states are then re-read
#: An image is one msgpack array16 of ``STATE_FIELDS`` items, or one more: an opaque ``extra`` of
#: at most ``EXTRA_MAX`` bytes after them (a tail keeps its file's identity there while idle).
EXTRA_MAX = 250
_ARRAY16 = 0xDC
_BIN8 = 0xC4


def dump(stats: TranscriptStats, segment: bool = True, extra: bytes = b"") -> bytes:
    """The packed image of ``stats`` (the dump it was loaded from when nothing changed it), with
    ``extra`` after its fields when given (:func:`with_extra`).

    Without ``segment`` the context segment is written as the one figure its readers need (the
    characters since the last reset, :meth:`~clawstats.core.segment.ContextSegment.chars_since_reset`):
    ~150 of an idle sweep transcript's ~350 bytes. Statistics loaded from such an image are read,
    never continued: their owner rebuilds them from their source first (``watch/tail.py``)."""
    blob = stats.blob
    if blob is not None and (segment or stats.seg_chars is not None):  # (one without it, the one kept)
        return (with_extra(blob, extra) or blob) if extra else blob
    # Encoded into a buffer and copied out: ``encode()`` returns its grown buffer shrunk in
    # place, which keeps up to a quarter more than its size (~110 bytes a packed transcript).
    buffer = bytearray()
    uuid = _pack_id(stats.session_id)
    model, provider, model_id = stats.model, stats.current_provider, stats.current_model_id
    # the transcript switched to the model it then ran (most do): the two fields are its parts
    spelt = provider is not None and model_id is not None and model == f"{provider}/{model_id}" and "/" not in provider
    _state_encoder.encode_into(
        _State(
            version=STATE_VERSION,
            session_id=None if uuid else stats.session_id,
            session_uuid=uuid,
            transcript_version=stats.version,
            entries=stats.entries,
            last_ts=stats.last_ts,
            cost=SAME if _ends(stats.tl_f, stats.cost, 1) else stats.cost,
            model=model,
            buckets=[
                _DayModel(day_number(day), 0 if name == model and model is not None else name, bucket.image())
                for (day, name), bucket in stats.buckets.items()
            ],
            messages=(stats.user, stats.assistant, stats.tool_calls, stats.tool_results, stats.errors),
            compactions=stats.compactions,
            resets=stats.resets,
            # as its words: packing its mostly-zero high bytes away (~50 bytes a sweep transcript)
            # cost ~4 us a dump and load in Python, ~0.2 s of a cold start at 50,000 sessions
            seg=stats.seg.tobytes() if segment and stats.seg_chars is None else stats.chars_since_reset(),
            last_prompt=stats.last_prompt,
            last_output=stats.last_output,
            last_call_ms=SAME if _ends(stats.tl_f, stats.last_call_ms, 2) else stats.last_call_ms,
            compacted_after_call=stats.compacted_after_call,
            estimate_at_compaction=stats.estimate_at_compaction,
            chars_after_compaction=stats.chars_after_compaction,
            summary_chars=stats.summary_chars,
            branch_lost=stats.branch_lost,
            tl_f=stats.tl_f.tobytes(),
            tl_i=stats.tl_i.tobytes(),
            current_provider=0 if spelt else provider,
            current_model_id=0 if spelt else model_id,
            spawned=stats.spawned,
            base_prompt=stats.base_prompt,
        ),
        buffer,
    )
    if extra and len(extra) <= EXTRA_MAX and buffer[0] == _ARRAY16:  # (in the one copy out)
        buffer[1:3] = (STATE_FIELDS + 1).to_bytes(2, "big")
        buffer += bytes((_BIN8, len(extra) + 1))
        buffer += extra
        buffer.append(len(extra))
    return bytes(buffer)


def with_extra(blob: bytes, extra: bytes) -> bytes | None:
    """``blob`` carrying ``extra`` as one more item after its fields (a bin8 of it and its length,
    read back from the end: :func:`extra_of`), an item every reader of an image skips (an
    array-like struct ignores trailing items); one it carried already is replaced, and ``blob``
    itself is the answer when it carries this one. None when it cannot carry one."""
    if len(blob) <= 3 or blob[0] != _ARRAY16 or len(extra) > EXTRA_MAX:
        return None
    count = int.from_bytes(blob[1:3], "big")
    if count == STATE_FIELDS + 1:
        size = blob[-1]
        if blob[-1 - size : -1] == extra:
            return blob
        end = len(blob) - size - 3  # bin8 marker, its length, the item, the item's length
    elif count == STATE_FIELDS:
        end = len(blob)
    else:
        return None
    size = len(extra)
    parts = (bytes((_ARRAY16,)), (STATE_FIELDS + 1).to_bytes(2, "big"), memoryview(blob)[3:end])
    return b"".join((*parts, bytes((_BIN8, size + 1)), extra, bytes((size,))))


def _carries_extra(blob: bytes) -> bool:
    return len(blob) > 3 and blob[0] == _ARRAY16 and int.from_bytes(blob[1:3], "big") == STATE_FIELDS + 1


def extra_of(blob: bytes) -> bytes:
    """The item :func:`with_extra` put after an image's fields; b"" when it carries none."""
    return blob[-1 - blob[-1] : -1] if _carries_extra(blob) else b""


def without_extra(blob: bytes) -> bytes:
    """``blob`` without the item :func:`with_extra` put in it (itself when it carries none)."""
    if not _carries_extra(blob):
        return blob
    parts = (bytes((_ARRAY16,)), STATE_FIELDS.to_bytes(2, "big"), memoryview(blob)[3 : -3 - blob[-1]])
    return b"".join(parts)


def load_into(stats: TranscriptStats, blob: bytes, price: Pricer | None) -> None:
    """Set every slot of ``stats`` (made by ``__new__``) from ``blob``; raises ValueError on a blob
    of another version."""
    state = _decode(blob)
    # Every slot set once, here, not first by __init__: a cold start loads each of 50,000
    # transcripts (a temporary copy to build its row), ~40% of a load was the double setting.
    uuid = state.session_uuid
    stats.session_id = _unpack_id(uuid) if uuid else state.session_id
    stats.version, stats.entries = state.transcript_version, state.entries
    stats.last_ts = state.last_ts
    stats.cost, stats.last_call_ms = last_call(state.cost, state.last_call_ms, state.tl_f)
    model = stats.model = shared(state.model) if state.model is not None else None
    stats.buckets = {
        (day_string(b.day), shared(b.model) if type(b.model) is str else model): b.bucket.bucket()  # type: ignore[misc]
        for b in state.buckets
    }
    stats.shared_buckets = False
    stats.user, stats.assistant, stats.tool_calls, stats.tool_results, stats.errors = state.messages
    stats.compactions, stats.resets = state.compactions, state.resets
    seg = state.seg
    if isinstance(seg, int):  # written without its segment: its characters alone
        stats.seg, stats.seg_chars = array("I"), seg
    else:
        stats.seg, stats.seg_chars = array("I", seg), None  # bytes: read as the machine's words
    stats.last_prompt, stats.last_output = state.last_prompt, state.last_output
    stats.base_prompt = state.base_prompt
    stats.compacted_after_call = state.compacted_after_call
    stats.estimate_at_compaction = state.estimate_at_compaction
    stats.chars_after_compaction, stats.summary_chars = state.chars_after_compaction, state.summary_chars
    stats.branch_lost = state.branch_lost
    stats.last_id = None
    stats.tl_f = array("d", state.tl_f)
    stats.tl_i = array("I", state.tl_i)
    stats.price = price
    provider, model_id = state.current_provider, state.current_model_id
    if provider == 0 and model is not None:  # spelt by the model (see dump)
        provider, _, model_id = model.partition("/")
    stats.current_provider = shared(provider) if isinstance(provider, str) and provider else None
    stats.current_model_id = shared(model_id) if isinstance(model_id, str) and model_id else None
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
    day: str | int  # days since the epoch (:func:`day_number`), else the day as it was read
    model: str | int  # 0: the transcript's model
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
    cost: float | int  # SAME: the timeline's last cumulative cost (most transcripts end on a call)
    last_call_ms: float | int | None  # SAME: the timeline's last call
    base_prompt: int | None
    tl_f: bytes
    tl_i: bytes
    model: str | None  # before the buckets: their model 0 is it (``core/peek.py`` reads it so)
    buckets: list[_DayModel]
    compactions: tuple[Compaction, ...]
    spawned: tuple[str, ...]
    session_id: str | None  # None when it is a UUID: its 16 bytes follow (:func:`_pack_id`)
    session_uuid: bytes
    transcript_version: int | None
    last_ts: str | float | None
    messages: tuple[int, int, int, int, int]
    resets: int
    seg: bytes | int  # int: written without the segment, its characters since the last reset
    last_prompt: int | None
    last_output: int
    compacted_after_call: bool
    estimate_at_compaction: int | None
    chars_after_compaction: int
    summary_chars: int
    branch_lost: bool
    current_provider: str | int | None  # 0 (both): the model's parts before and after its first "/"
    current_model_id: str | int | None


#: What the cost or the last call's time is written as when it is the timeline's last point.
SAME = 0
_POINT = struct.Struct("=dd")  # a point of ``tl_f`` (call ms, cumulative cost), native as the array


def _ends(tl_f: array[float], value: float | None, back: int) -> bool:
    """Whether ``value`` is, to the bit, ``tl_f[-back]`` (the last call's time or cost)."""
    if type(value) is not float or len(tl_f) < 2:
        return False
    end = tl_f[-back]
    return value == end and (value != 0.0 or math.copysign(1.0, value) == math.copysign(1.0, end))  # not -0.0 for 0.0


def last_call(cost: float | int, last_ms: float | int | None, tl_f: bytes) -> tuple[float, float | None]:
    """The cost and last call's time as dumped, :data:`SAME` read from the timeline's last point."""
    if type(cost) is int or type(last_ms) is int:
        end_ms, end_cost = _POINT.unpack_from(tl_f, len(tl_f) - _POINT.size)
        if type(cost) is int:
            cost = end_cost
        if type(last_ms) is int:
            last_ms = end_ms
    return cost, last_ms


#: Days since the epoch of the dates buckets are read under, and back (one string per day); a few
#: hundred in any store, bounded as :func:`~clawstats.core.records.shared` is.
_DAY_NUMBERS: dict[str, int] = {}
_DAY_STRINGS: dict[int, str] = {}
_EPOCH = date(1970, 1, 1)


def day_number(day: str) -> str | int:
    """A bucket's day as its number of days since the epoch (3 bytes packed, not 11), or as it is
    when it is not a date written as ``YYYY-MM-DD`` (``unknown``, an odd stamp's first ten)."""
    number = _DAY_NUMBERS.get(day)
    if number is not None:
        return number
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        return day
    if parsed.isoformat() != day:  # another spelling of the date (e.g. "20261124"): kept as it is
        return day
    number = (parsed - _EPOCH).days
    if len(_DAY_NUMBERS) < SHARED_MAX:
        _DAY_NUMBERS[day] = number
    return number


def day_string(day: str | int) -> str:
    """Inverse of :func:`day_number`: the one kept string of that day."""
    if isinstance(day, str):
        return shared(day)
    found = _DAY_STRINGS.get(day)
    if found is None:
        found = shared((_EPOCH + timedelta(days=day)).isoformat())
        if len(_DAY_STRINGS) < SHARED_MAX:
            _DAY_STRINGS[day] = found
    return found


def _pack_id(session_id: str | None) -> bytes:
    """A session id written as a UUID (what OpenClaw makes) as its 16 bytes, not 36 characters;
    empty for any other."""
    if session_id is None or len(session_id) != 36 or session_id[8] != "-":
        return b""
    try:
        packed = bytes.fromhex(session_id.replace("-", ""))
    except ValueError:
        return b""
    # exactly that spelling back (lower case, the dashes where a UUID has them), else as it is
    return packed if len(packed) == 16 and _unpack_id(packed) == session_id else b""


def _unpack_id(packed: bytes) -> str:
    h = packed.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_state_encoder = msgspec.msgpack.Encoder()
_version_decoder = msgspec.msgpack.Decoder(_Version)
_state_decoder = msgspec.msgpack.Decoder(_State)
#: The items of an image (an array of this many; a tail may add one after them: watch/tail_state.py)
STATE_FIELDS = len(_State.__struct_fields__)
