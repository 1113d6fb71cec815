"""What an assistant message says about calls and tools, by OpenClaw's own rules.

Which messages are model calls (OpenClaw's delivery mirrors and injected text are bookkeeping),
the cost it recorded (``usage.cost.total`` or a bare number), the tool calls and tool results in
its content blocks, and the stop reasons counted as errors: the same rules as OpenClaw's usage
report (``session-cost-usage``), so message counts and costs agree with it line by line.
"""

from __future__ import annotations

from typing import Any

import msgspec

from clawstats.core.records import Cost, Message, Usage

_INF = float("inf")

#: Stop reasons OpenClaw's usage report counts as errors.
ERROR_STOP_REASONS = frozenset({"error", "aborted", "timeout"})
#: Assistant messages OpenClaw writes itself (provider ``openclaw``): not model calls.
BOOKKEEPING_MODELS = frozenset({"delivery-mirror", "gateway-injected"})
_MIRROR_KINDS = frozenset(
    {"channel-final", "channel-final-suppressed", "message-tool-source-reply", "cron-direct-delivery-context"}
)
#: Content block types of a tool call and of a tool result (compared lower-cased, as OpenClaw does).
_CALL_TYPES = frozenset({"toolcall", "tool_call", "tooluse", "tool_use"})
_RESULT_TYPES = frozenset({"tool_result", "tool_result_error"})
#: A JSON string starting with "tool" (any tool block type, compact or spaced JSON; sometimes an
#: id), and the block OpenClaw itself writes: when they are as many, no decoding is needed.
TOOL_MARK = b'"tool'
_TOOL_CALL_MARK = b'"type":"toolCall"'
_TYPE_PREFIX = len(b'"type":')


class _Block(msgspec.Struct):
    type: Any = None
    name: Any = None
    is_error: Any = None


_blocks = msgspec.json.Decoder(list[_Block] | str | None)


class _Marker(msgspec.Struct):
    kind: Any = None


_marker = msgspec.json.Decoder(_Marker | None)


def is_true(raw: msgspec.Raw) -> bool:
    """A raw JSON value is ``true``."""
    return len(raw) == 4 and bytes(raw) == b"true"


def is_bookkeeping(msg: Message) -> bool:
    """An assistant message OpenClaw wrote itself (a delivery mirror, injected text)."""
    if msg.provider == "openclaw" and msg.model in BOOKKEEPING_MODELS:
        return True
    if not len(msg.openclawDeliveryMirror):
        return False
    try:
        marker = _marker.decode(msg.openclawDeliveryMirror)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False
    return marker is not None and marker.kind in _MIRROR_KINDS


def recorded_cost(usage: Usage) -> float | None:
    """The USD OpenClaw recorded for the call: ``cost.total`` or a bare ``cost`` number; None
    when there is none (a negative or non-finite amount is none, as in OpenClaw)."""
    cost = usage.cost
    total = cost.total if type(cost) is Cost else cost
    if type(total) is float or type(total) is int:  # bool excluded: type() is exact
        return float(total) if 0 <= total < _INF else None
    return None


def tool_blocks(raw: bytes) -> tuple[int, int, int]:
    """(tool calls, tool results, failed tool results) in an assistant message's raw content."""
    # One pass over the content: every string starting with "tool" is OpenClaw's own compact
    # ``"type":"toolCall"`` (counted here) or something else (then the blocks are decoded).
    calls = 0
    at = raw.find(TOOL_MARK)
    while at >= 0:
        if not raw.startswith(_TOOL_CALL_MARK, at - _TYPE_PREFIX):
            break
        calls += 1
        at = raw.find(TOOL_MARK, at + len(_TOOL_CALL_MARK))
    else:
        return calls, 0, 0
    try:
        blocks = _blocks.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return 0, 0, 0
    if not isinstance(blocks, list):
        return 0, 0, 0
    calls = results = failed = 0
    for block in blocks:
        kind = block.type.lower() if isinstance(block.type, str) else ""
        if kind in _CALL_TYPES and isinstance(block.name, str) and block.name.strip():
            calls += 1
        elif kind in _RESULT_TYPES:
            results += 1
            failed += block.is_error is True
    return calls, results, failed
