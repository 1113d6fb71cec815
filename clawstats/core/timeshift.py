"""Move every timestamp in OpenClaw store text by one offset, touching nothing else.

The bundled real sample was written on one day; a demo (and a test that needs "recent"
activity) should look as if it was written now. Rewriting by regular expression on the raw
text, rather than decoding and re-encoding JSON, keeps every other byte as OpenClaw wrote it:
message lengths, key order, number formatting and escapes, which the compaction estimate and
the byte-offset bookkeeping depend on.

Three shapes are timestamps in the store: epoch milliseconds as JSON number values (13 digits,
between 2001 and 2100), ISO-8601 UTC strings (``2026-11-24T17:08:45.155Z``), and the time in a
reset/deleted archive's file name (``.reset.2026-11-24T17-08-45.156Z``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

#: A 13-digit integer that is a JSON value (after ``:``, ``[`` or ``,``; before ``,``, ``}``
#: or ``]``): epoch milliseconds from 2001-09 to 2100. Digits inside strings (hashes, ids) are
#: never preceded by a JSON delimiter, so they are left alone.
_EPOCH_MS = re.compile(rb"(?P<pre>[:\[,]\s*)(?P<ms>1\d{12}|[2-3]\d{12}|40\d{11})(?=\s*[,}\]])")
_ISO = re.compile(rb"\"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z)\"")
_ARCHIVE_TS = re.compile(r"(?P<pre>\.jsonl\.(?:reset|deleted)\.)(?P<ts>\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(?:\.\d{1,6})?Z)")


def _shift_iso(stamp: str, offset_ms: int) -> str:
    """``stamp`` (``...T..:..:..[.fff]Z``) moved by ``offset_ms``, with the same precision."""
    body = stamp[:-1]
    moved = datetime.fromisoformat(body).replace(tzinfo=UTC) + timedelta(milliseconds=offset_ms)
    digits = len(body.partition(".")[2])
    text = moved.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{moved.microsecond:06d}"[:digits]
    return text + "Z"


def shift_bytes(data: bytes, offset_ms: int) -> bytes:
    """``data`` (JSON or JSONL text) with every timestamp moved by ``offset_ms``."""

    def epoch(match: re.Match[bytes]) -> bytes:
        return match["pre"] + str(int(match["ms"]) + offset_ms).encode()

    def iso(match: re.Match[bytes]) -> bytes:
        return b'"' + _shift_iso(match["ts"].decode(), offset_ms).encode() + b'"'

    return _ISO.sub(iso, _EPOCH_MS.sub(epoch, data))


def shift_name(name: str, offset_ms: int) -> str:
    """A file name whose archive timestamp (``.reset.<ts>``/``.deleted.<ts>``) is moved."""

    def moved(match: re.Match[str]) -> str:
        day, _, clock = match["ts"].partition("T")
        iso = f"{day}T{clock[:8].replace('-', ':')}{clock[8:]}"
        day2, _, clock2 = _shift_iso(iso, offset_ms).partition("T")
        return match["pre"] + f"{day2}T{clock2[:8].replace(':', '-')}{clock2[8:]}"

    return _ARCHIVE_TS.sub(moved, name)


def latest_ms(data: bytes) -> int | None:
    """The latest timestamp in ``data`` (epoch ms), or None when it holds none."""
    stamps = [int(m["ms"]) for m in _EPOCH_MS.finditer(data)]
    for match in _ISO.finditer(data):
        stamp = match["ts"].decode()[:-1]
        stamps.append(int(datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp() * 1000))
    return max(stamps) if stamps else None
