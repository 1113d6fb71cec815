"""Which session key an archived transcript belonged to.

``sessions.json`` rows carry no history of earlier ``sessionId``s, so a reset archive
``<oldId>.jsonl.reset.<ts>`` names no key. OpenClaw's runtime trace beside it
(``<oldId>.trajectory.jsonl``, kept under its old name) starts with a record carrying
``sessionKey``; reading its first line (a few KB) is enough. Only ids and keys are read.
"""

from __future__ import annotations

import os
import stat

import msgspec

_FIRST_LINE_BYTES = 64 << 10


class _TraceStart(msgspec.Struct):
    sessionKey: str | None = None


_decoder = msgspec.json.Decoder(_TraceStart)


def owner_from_trajectory(path: str) -> str | None:
    """The ``sessionKey`` of a trajectory file's first record, or None."""
    try:
        # Non-blocking and regular files only: a FIFO here must not stall the scanner.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            head = fh.read(_FIRST_LINE_BYTES)
    except OSError:
        return None
    line, newline, _ = head.partition(b"\n")
    if not newline:
        return None
    try:
        key = _decoder.decode(line).sessionKey
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return None
    return key if key and key.startswith("agent:") else None
