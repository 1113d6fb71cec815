"""When a session will compact: context growth per turn and turns left before OpenClaw's threshold.

OpenClaw compacts a session automatically once the context after a turn (prompt + output of
its last model call) passes ``window - reserve``. The reserve depends on the release:

- 2026.7.x and older (``agents.defaults.compaction.reserveTokens`` / ``reserveTokensFloor``
  in the config): ``max(reserveTokens or 16384, floor)``, the floor being ``reserveTokensFloor``
  or 20000, both capped so that ``min(8000, window / 2)`` tokens stay for the prompt
  (``applyAgentCompactionSettingsFromConfig``).
- 2026.8 and newer retired both keys: ``min(20000, window / 4)``
  (``resolveEffectiveCompactionReserveTokens``).

Pure; a "turn" here is one model call (a turn with tool calls has several).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: deltas of recent calls the growth is the median of
RECENT_TURNS = 8
_LEGACY_RESERVE_DEFAULT = 16384
_LEGACY_FLOOR_DEFAULT = 20000
_LEGACY_MIN_PROMPT_TOKENS = 8000
_RESERVE_DEFAULT = 20000
_RESERVE_MAX_RATIO = 0.25


@dataclass(frozen=True, slots=True)
class CompactionConfig:
    """``agents.defaults.compaction`` as far as the threshold depends on it."""

    enabled: bool = True
    reserve_tokens: int | None = None
    reserve_tokens_floor: int | None = None
    legacy: bool = False  # the config still has 2026.7-era reserve keys

    def reserve(self, window: int) -> int:
        """The tokens OpenClaw keeps free below ``window`` before it compacts."""
        if not self.legacy:
            return min(_RESERVE_DEFAULT, math.floor(window * _RESERVE_MAX_RATIO))
        max_reserve = max(0, window - min(_LEGACY_MIN_PROMPT_TOKENS, max(1, math.floor(window * 0.5))))
        floor = self.reserve_tokens_floor if self.reserve_tokens_floor is not None else _LEGACY_FLOOR_DEFAULT
        floor = min(floor, max_reserve)
        target = max(_LEGACY_RESERVE_DEFAULT if self.reserve_tokens is None else self.reserve_tokens, floor)
        return min(target, max_reserve)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
        return None
    return int(value)


def compaction_config(config: Mapping[str, Any] | None) -> CompactionConfig:
    """Read ``agents.defaults.compaction`` from a parsed ``openclaw.json``."""
    agents = config.get("agents") if isinstance(config, Mapping) else None
    defaults = agents.get("defaults") if isinstance(agents, Mapping) else None
    section = defaults.get("compaction") if isinstance(defaults, Mapping) else None
    if not isinstance(section, Mapping):
        return CompactionConfig()
    reserve, floor = _count(section.get("reserveTokens")), _count(section.get("reserveTokensFloor"))
    return CompactionConfig(
        enabled=section.get("enabled") is not False,
        reserve_tokens=reserve,
        reserve_tokens_floor=floor,
        legacy="reserveTokens" in section or "reserveTokensFloor" in section,
    )


def median(values: Sequence[int]) -> float:
    """``statistics.median`` of a non-empty sequence (that module costs more to import than a
    one-shot CLI spends on every forecast)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def growth_per_turn(after_turn: Sequence[int], compacted_before: Sequence[bool]) -> int | None:
    """Median growth of the context after a turn over the last ``RECENT_TURNS`` turns.

    ``after_turn[i]`` is prompt + output of call ``i``; ``compacted_before[i]`` says a compaction
    came between call ``i - 1`` and call ``i`` (that delta is a drop, not growth, and is skipped).
    """
    deltas = [after_turn[i] - after_turn[i - 1] for i in range(1, len(after_turn)) if not compacted_before[i]]
    recent = deltas[-RECENT_TURNS:]
    if len(recent) < 2:
        return None
    return round(median(recent))


@dataclass(frozen=True, slots=True)
class TurnsLeft:
    turns: int | None
    reason: str | None  # why ``turns`` is None


def turns_to_compaction(
    context_after_turn: int | None,
    window: int | None,
    growth: int | None,
    config: CompactionConfig,
    next_message: int | None = None,
) -> TurnsLeft:
    """The turn (1 = the next one) after which OpenClaw compacts.

    After turn ``n`` the context is ``C + n*g``. OpenClaw compacts before the following turn once
    that context plus the new message reaches ``T = window - reserve`` (its preflight projection),
    and after a turn once the context passes ``T``; the first comes no later. So ``n`` is the
    smallest ``n >= 1`` with ``C + n*g + m >= T``, ``m`` the expected size of a new message
    (``next_message``, default 0); 1 when the context already passed ``T``.
    """
    if not config.enabled:
        return TurnsLeft(None, "compaction disabled in the config")
    if context_after_turn is None or not window:
        return TurnsLeft(None, "context unknown")
    threshold = window - config.reserve(window)
    if context_after_turn > threshold:
        return TurnsLeft(1, None)
    if growth is None:
        return TurnsLeft(None, "fewer than 3 turns to measure growth")
    if growth <= 0:
        return TurnsLeft(None, "context not growing")
    remaining = threshold - context_after_turn - max(0, next_message or 0)
    return TurnsLeft(max(1, -(-remaining // growth)), None)


def forecast(
    calls_ms: Sequence[float],
    prompts: Sequence[int],
    outputs: Sequence[int],
    compactions_ms: Sequence[float | None],
    window: int | None,
    config: CompactionConfig,
    context_now: int | None = None,
) -> tuple[int | None, TurnsLeft]:
    """(contextGrowthPerTurn, turns left) from a transcript's per-call timeline and its compactions.

    ``context_now`` is the context clawstats shows; it is used when a compaction came after the
    last call (the estimate of the compacted context).
    """
    if not prompts:
        return None, TurnsLeft(None, "no model call yet")
    after = [p + o for p, o in zip(prompts, outputs, strict=True)]
    stamps = sorted(ms for ms in compactions_ms if ms is not None)
    compacted_before = [False] * len(after)
    pending = 0  # compactions not yet placed between two calls
    if stamps:  # (most sessions never compacted: nothing to place)
        for i, at in enumerate(calls_ms):
            while pending < len(stamps) and stamps[pending] <= at:
                compacted_before[i] = i > 0
                pending += 1
    growth = growth_per_turn(after, compacted_before)
    # a turn's growth is its new message plus its reply: the message alone is growth minus a reply
    next_message = None if growth is None else max(0, growth - round(median(outputs[-RECENT_TURNS:])))
    if pending < len(stamps):
        # compacted since the last call: the next turn starts from the compacted context
        if context_now is None:
            return growth, TurnsLeft(None, "compacted since the last call, compacted context unknown")
        return growth, turns_to_compaction(context_now, window, growth, config, next_message)
    return growth, turns_to_compaction(after[-1], window, growth, config, next_message)
