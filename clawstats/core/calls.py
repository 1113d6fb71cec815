"""What an assistant message says about calls and tools, by OpenClaw's own rules.

Which messages are model calls (OpenClaw's delivery mirrors and injected text are bookkeeping),
the cost it recorded (``usage.cost.total`` or a bare number), the tool calls and tool results in
its content blocks, and the stop reasons counted as errors: the same rules as OpenClaw's usage
report (``session-cost-usage``), so message counts and costs agree with it line by line.
"""

from __future__ import annotations

from typing import Any

import msgspec

from clawstats.core.records import Message, Usage

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
#: The block OpenClaw itself writes: counted without decoding the content.
_TOOL_CALL_MARK = b'"type":"toolCall"'


class _Block(msgspec.Struct):
    type: Any = None
    name: Any = None
    is_error: Any = None


_blocks = msgspec.json.Decoder(list[_Block] | str | None)


def is_bookkeeping(msg: Message) -> bool:
    """An assistant message OpenClaw wrote itself (a delivery mirror, injected text)."""
    if msg.provider == "openclaw" and msg.model in BOOKKEEPING_MODELS:
        return True
    marker = msg.openclawDeliveryMirror
    return isinstance(marker, dict) and marker.get("kind") in _MIRROR_KINDS


def recorded_cost(usage: Usage) -> float | None:
    """The USD OpenClaw recorded for the call: ``cost.total`` or a bare ``cost`` number; None
    when there is none (a negative or non-finite amount is none, as in OpenClaw)."""
    cost = usage.cost
    total = cost if isinstance(cost, int | float) else cost.total if cost is not None else None
    if isinstance(total, bool) or not isinstance(total, int | float) or not 0 <= total < float("inf"):
        return None
    return float(total)


def tool_blocks(content: msgspec.Raw) -> tuple[int, int, int]:
    """(tool calls, tool results, failed tool results) in an assistant message's content."""
    raw = bytes(content)
    if b"tool_" not in raw and b"toolUse" not in raw and b'": "' not in raw:
        return raw.count(_TOOL_CALL_MARK), 0, 0  # OpenClaw's own compact blocks: no decoding
    try:
        blocks = _blocks.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
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
