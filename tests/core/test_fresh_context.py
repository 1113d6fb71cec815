"""A context without a call yet (new / reset session) and a model switched by ``sessions.patch``."""

from __future__ import annotations

import json

from clawstats.core.catalog import catalog_from_config
from clawstats.core.records import IndexRow, decode_line, parse_index_row
from clawstats.core.session import build_row
from clawstats.core.transcript import TranscriptStats

CATALOG = catalog_from_config(
    {
        "models": {
            "providers": {
                "mock": {
                    "models": [
                        {"id": "mock-large", "contextWindow": 128000},
                        {"id": "mock-small", "contextWindow": 32000},
                    ]
                }
            }
        }
    }
)
USER_TEXT = "x" * 4000  # 1000 tokens at 4 characters a token


def _feed(stats: TranscriptStats, *entries: dict[str, object]) -> None:
    for entry in entries:
        stats.apply(decode_line(json.dumps(entry).encode()))


def _user(n: int) -> dict[str, object]:
    content = [{"type": "text", "text": USER_TEXT}]
    return {"type": "message", "id": f"u{n}", "timestamp": "2026-11-24T18:00:00.000Z",
            "message": {"role": "user", "content": content}}  # fmt: skip


def _call(n: int, prompt: int) -> dict[str, object]:
    message = {
        "role": "assistant",
        "content": [{"type": "text", "text": "ok"}],
        "provider": "mock",
        "model": "mock-large",
        "usage": {"input": prompt, "output": 10, "cost": {"total": 0.01}},
        "stopReason": "stop",
        "timestamp": "2026-11-24T18:00:01.000Z",
    }
    return {"type": "message", "id": f"a{n}", "timestamp": "2026-11-24T18:00:01.000Z", "message": message}


def _row(**fields: object) -> IndexRow:
    base = {"sessionId": "s1", "updatedAt": 1795550402000, "modelProvider": "mock", "model": "mock-large"}
    return parse_index_row(json.dumps({**base, **fields}))


def test_reset_with_a_zero_fresh_snapshot_serves_the_base_prompt_as_an_estimate() -> None:
    """OpenClaw 2026.9 writes totalTokens 0 marked fresh after sessions.reset; the next prompt is ~15k."""
    stats = TranscriptStats()
    _feed(stats, {"type": "session", "id": "s1"}, _user(1), _call(1, 15_000), _user(2), _call(2, 16_500))
    user_chars = len(json.dumps([{"type": "text", "text": USER_TEXT}])) - 2  # content JSON, quotes off
    assert stats.base_prompt == 15_000 - user_chars // 4  # the first call minus the user message
    _feed(stats, {"type": "reset", "id": "r1", "timestamp": "2026-11-24T18:01:00.000Z"})
    row = build_row("agent:main:x", "main", _row(totalTokens=0, totalTokensFresh=True), stats, CATALOG)
    assert row.context_source == "estimate" and row.context_tokens == stats.base_prompt
    assert row.snapshot_stale  # OpenClaw's own 0 is not the context in use


def test_new_transcript_without_a_call_uses_the_agents_base_prompt() -> None:
    """OpenClaw 2026.7 starts a new transcript on reset: the agent's base prompt is the estimate."""
    stats = TranscriptStats()
    _feed(stats, {"type": "session", "id": "s2"})
    row = build_row("agent:main:x", "main", _row(sessionId="s2"), stats, CATALOG, base_prompt=14_000)
    assert (row.context_tokens, row.context_source, row.context_pct) == (14_000, "estimate", 11)
    unknown = build_row("agent:main:x", "main", _row(sessionId="s2"), stats, CATALOG)
    assert unknown.context_source == "unknown" and unknown.context_tokens is None


def test_a_real_snapshot_still_wins_over_the_estimate() -> None:
    stats = TranscriptStats()
    _feed(stats, {"type": "session", "id": "s1"}, _user(1), _call(1, 15_000))
    fresh = _row(totalTokens=15_010, totalTokensFresh=True, updatedAt=1795550402000)
    row = build_row("agent:main:x", "main", fresh, stats, CATALOG, base_prompt=9)
    assert (row.context_tokens, row.context_source) == (15_010, "snapshot")


def test_model_switch_model_window_and_percent_describe_the_selected_model() -> None:
    """After sessions.patch {model} and before the next turn: the row's model is the last run's."""
    patched = _row(
        modelOverride="mock-small",
        providerOverride="mock",
        contextTokens=32000,
        totalTokens=13_800,
        totalTokensFresh=True,
    )
    row = build_row("agent:main:x", "main", patched, None, CATALOG)
    assert (row.model, row.context_window, row.context_pct) == ("mock/mock-small", 32000, 43)
    # a row whose contextTokens still belongs to the last-run model: the selected model's window
    stale_window = _row(modelOverride="mock/mock-small", contextTokens=128000, totalTokens=13_800)
    row = build_row("agent:main:x", "main", stale_window, None, CATALOG)
    assert (row.model, row.context_window, row.context_window_source) == ("mock/mock-small", 32000, "config")
    # no override: the model that ran last, with the row's window
    plain = build_row("agent:main:x", "main", _row(contextTokens=128000), None, CATALOG)
    assert (plain.model, plain.context_window, plain.context_window_source) == ("mock/mock-large", 128000, "row")
