"""Decoding of OpenClaw records: one transcript line (or SQLite event) and one index row.

Only the fields the statistics need are declared; everything else is skipped by the decoder
without building Python objects (message text is read as ``msgspec.Raw``: its length is kept,
its content never is). A line that is not valid JSON, or whose used fields have the wrong
type, raises :class:`BadRecord` with a ``kind`` the caller counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta, Raw, Struct

T = TypeVar("T")
#: A count, cost or epoch time: never negative, at most 1e18 (JSON cannot carry NaN or infinity;
#: msgspec refuses numbers beyond a double). A line with one out of range is skipped as a whole
#: and counted as ``badValue`` (a negative cost would lower the totals). Checked in C, so free.
Number = Annotated[int, Meta(ge=0)] | Annotated[float, Meta(ge=0, le=1e18)]
#: Loose on purpose: fields we only display may come in any scalar shape.
Stamp = str | Number | None


class BadRecord(Exception):
    """A record that cannot be used; ``kind`` is the health counter it goes to."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class Cost(Struct):
    total: Number | None = None


class Usage(Struct):
    input: Number | None = 0
    output: Number | None = 0
    cacheRead: Number | None = 0
    cacheWrite: Number | None = 0
    totalTokens: Number | None = None
    #: ``{"total": ...}``, or a bare number (OpenRouter calls are recorded so)
    cost: Cost | Number | None = None


class Message(Struct):
    role: str | None = None
    content: Raw = Raw(b"")
    provider: str | None = None
    model: str | None = None
    usage: Usage | None = None
    stopReason: str | None = None
    timestamp: Stamp = None
    # Raw (never a Python object, so decoded lines stay untracked by the garbage collector) and
    # loose: only ``true`` counts, an odd value is not a skipped line. ``is_error``: the
    # snake_case spelling some writers use.
    isError: Raw = Raw(b"")
    is_error: Raw = Raw(b"")
    #: set on OpenClaw's delivery mirrors (bookkeeping, not a model call)
    openclawDeliveryMirror: Raw = Raw(b"")
    toolName: Any = None  # loose: only the string ``sessions_spawn`` is used
    #: tool result metadata; decoded only for ``sessions_spawn`` (see :func:`decode_spawn_child`)
    details: Raw = Raw(b"")


class SnapshotData(Struct):
    provider: str | None = None
    modelId: str | None = None


class Line(Struct):
    """One transcript entry (file line or SQLite ``transcript_events`` row)."""

    type: str | None = None
    id: str | int | None = None
    parentId: str | int | None = None
    timestamp: Stamp = None
    message: Message | None = None
    customType: str | None = None
    data: Raw = Raw(b"")
    summary: Raw = Raw(b"")
    firstKeptEntryId: str | int | None = None
    tokensBefore: Number | None = None
    tokensAfter: Number | None = None
    fromHook: bool | None = None
    reason: str | None = None
    provider: str | None = None
    modelId: str | None = None
    version: Number | None = None


class SpawnDetails(Struct):
    """The ``details`` of a ``sessions_spawn`` tool result: which session key the child got.

    2026.7 writes them on the ``toolResult`` message; 2026.9 (tools behind structured tool search)
    on a ``custom`` message (``openclaw.nested-tool.v1``) as ``{toolName, result: {details}}``.
    """

    childSessionKey: Any = None
    toolName: Any = None
    result: SpawnResult | None = None


class SpawnResult(Struct):
    details: SpawnDetails | None = None


_line_decoder = msgspec.json.Decoder(Line)
_spawn_decoder = msgspec.json.Decoder(SpawnDetails)
_snapshot_decoder = msgspec.json.Decoder(SnapshotData)


def _decoded(decode: Callable[[Any], T], raw: Any, wrong_type: str, malformed: str) -> T:
    """``decode(raw)``, its failures mapped to :class:`BadRecord` of the two given kinds."""
    try:
        return decode(raw)
    except msgspec.ValidationError as exc:  # valid JSON, a used field of the wrong type or range
        message = str(exc)
        out_of_range = "` >= " in message or "` <= " in message
        raise BadRecord("badValue" if out_of_range and wrong_type == "wrongType" else wrong_type, message) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # invalid UTF-8 is a ValueError
        raise BadRecord(malformed, str(exc)) from None
    except RecursionError:  # nested past the interpreter's recursion limit (a tool call's arguments can be any JSON)
        raise BadRecord(malformed, "nested too deeply") from None


#: A UTF-8 byte order mark some editors and Windows tools put before the first line.
BOM = b"\xef\xbb\xbf"


def decode_line(raw: bytes | memoryview) -> Line:
    """Decode one JSON line (a leading BOM ignored); raise :class:`BadRecord` (``malformed`` or
    ``wrongType``)."""
    if raw[:3] == BOM:
        raw = raw[3:]
    return _decoded(_line_decoder.decode, raw, "wrongType", "malformed")


def decode_lines(data: bytes) -> list[Line]:
    """Decode a buffer of complete JSON lines at once (blank lines skipped).

    The fast path for bulk reads: one C call instead of one per line. Raises
    :class:`BadRecord` if any line is bad; the caller then falls back to :func:`decode_line`
    per line so that exactly the bad ones are counted.
    """
    return _decoded(_line_decoder.decode_lines, data, "wrongType", "malformed")


def decode_snapshot_data(raw: Raw) -> SnapshotData | None:
    """The ``data`` of a ``model-snapshot`` custom entry, or None when it is unusable."""
    try:
        return _decoded(_snapshot_decoder.decode, raw, "wrongType", "malformed")
    except BadRecord:
        return None


def decode_spawn_child(raw: Raw) -> str | None:
    """The child session key a ``sessions_spawn`` result names (either shape), or None."""
    if not raw:
        return None
    try:
        details = _spawn_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    key = details.childSessionKey
    if key is None and details.toolName == "sessions_spawn" and details.result is not None:
        nested = details.result.details
        key = nested.childSessionKey if nested is not None else None
    return key if isinstance(key, str) and 0 < len(key) <= 512 else None


#: Strings many records hold the same of (models, providers, statuses, channels, days): one object
#: each, kept for the process's life; past ``SHARED_MAX`` distinct ones (odd input) new values are
#: no longer kept, so the table cannot grow without bound.
_SHARED: dict[str, str] = {}
SHARED_MAX = 4096


def shared(value: str) -> str:
    """The one kept object equal to ``value`` (``sys.intern`` would do, but mixes them with the
    interpreter's own names and keeps any number of them)."""
    return _kept(_SHARED, value)


_K = TypeVar("_K", str, int)


def _kept(table: dict[_K, _K], value: _K) -> _K:
    """The object ``table`` keeps equal to ``value``, kept now if the table has room."""
    found = table.get(value)
    if found is not None:
        return found
    if len(table) < SHARED_MAX:
        table[value] = value
    return value


class IndexRow(Struct, gc=False):
    """The fields of a ``sessions.json`` row (or SQLite ``entry_json``) that statistics use.

    ``gc=False``: only scalars, so never part of a cycle (16 bytes less each, never tracked). The
    fields most rows repeat (model, provider, status, channel) hold shared strings (:func:`parse_index_row`).
    """

    sessionId: str | None = None
    updatedAt: Number | None = None
    sessionFile: str | None = None
    totalTokens: Number | None = None
    totalTokensFresh: bool | None = None
    contextTokens: Number | None = None
    compactionCount: Number | None = None
    model: str | None = None
    modelProvider: str | None = None
    modelOverride: str | None = None
    providerOverride: str | None = None
    label: str | None = None
    displayName: str | None = None
    channel: str | None = None
    lastChannel: str | None = None
    spawnedBy: str | None = None
    parentSessionKey: str | None = None
    status: str | None = None


_row_decoder = msgspec.json.Decoder(IndexRow)
_index_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_rows_decoder = msgspec.json.Decoder(dict[str, IndexRow])


def parse_index(
    raw: bytes, previous: Mapping[str, IndexRow] | None = None
) -> tuple[dict[str, IndexRow], dict[str, str]]:
    """Parse a whole ``sessions.json``.

    Returns the usable rows and, per rejected key, the reason. Raises :class:`BadRecord`
    when the document itself is unusable (not JSON, not an object), so the caller can keep
    its last good copy. A row equal to its ``previous`` one is that object (OpenClaw rewrites
    the whole file on every turn: the caller tells the few changed rows by identity, and the
    new copies of the others are freed).
    """
    try:
        # One C call for the whole document (a bad row or document: the path below names it).
        rows = _rows_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        pass
    else:
        previous = previous or {}
        for key, row in rows.items():
            before = previous.get(key)
            if before is not None and before == row:
                rows[key] = before
            else:
                _share(row)
        return rows, {}
    doc = _decoded(_index_decoder.decode, raw, "indexNotObject", "indexMalformed")
    rows = {}
    rejected: dict[str, str] = {}
    for key, value in doc.items():
        try:
            row = parse_index_row(value)
        except BadRecord as bad:
            rejected[key] = bad.detail
        else:
            before = previous.get(key) if previous is not None else None
            rows[key] = before if before is not None and before == row else row
    return rows, rejected


def parse_index_row(raw: bytes | str | Raw) -> IndexRow:
    """One row from its JSON text (SQLite ``entry_json``); raises :class:`BadRecord`."""
    return _share(_decoded(_row_decoder.decode, raw, "rowWrongType", "rowMalformed"))


def _share(row: IndexRow) -> IndexRow:
    """50,000 rows name a handful of models, statuses and context windows: one object each, not
    one per row (~200 bytes a row; under a microsecond)."""
    if row.model is not None:
        row.model = shared(row.model)
    if row.modelProvider is not None:
        row.modelProvider = shared(row.modelProvider)
    if row.status is not None:
        row.status = shared(row.status)
    if row.channel is not None:
        row.channel = shared(row.channel)
    if row.lastChannel is not None:
        row.lastChannel = shared(row.lastChannel)
    context = row.contextTokens
    if type(context) is int:  # a model's window: a few values over every row (32 bytes a row)
        row.contextTokens = _kept(_SHARED_INTS, context)
    updated = row.updatedAt
    if type(updated) is int and updated <= _EXACT_FLOAT:
        # The served row keeps it as a float (``updatedAtMs``): held as that float here, the row
        # shares it (``float()`` of a float is that object) instead of an int and a float (32
        # bytes a row). Equal to the int, so a rewrite's unchanged rows still compare equal.
        row.updatedAt = float(updated)
    return row


#: Ints up to this are floats exactly (epoch ms are, for the next 285,000 years).
_EXACT_FLOAT = 2**53


#: Ints many rows hold the same of (context windows), as :data:`_SHARED`; capped the same way.
_SHARED_INTS: dict[int, int] = {}


#: Longest transcript line (or SQLite event) read; longer ones are skipped and counted.
DEFAULT_MAX_LINE_BYTES = 64 << 20
MAX_COUNT = 0xFFFFFFFF  # token counts are kept in 32-bit arrays; anything larger is junk


def as_int(value: Any) -> int:
    """A token count as an int in [0, 2**32) (floats truncated, junk as 0)."""
    if type(value) is int and 0 <= value <= MAX_COUNT:  # the common case, first and cheap
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if value != value or value < 0:
        return 0
    return int(min(value, MAX_COUNT))


def iso_to_ms(value: Any) -> float | None:
    """Epoch ms from an ISO-8601 string or an epoch-ms number; None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value == value and 0 <= value < 1e15 else None
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp() * 1000.0


def ms_to_day(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000.0, UTC).strftime("%Y-%m-%d")
