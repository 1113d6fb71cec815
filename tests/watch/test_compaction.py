"""Context right after a compaction, where OpenClaw's own number is stale or missing.

The cases are built from the real ``agent:ops:incident-long`` transcript, cut right after its
automatic compaction, with the row edited the way OpenClaw 2026.7.1 leaves it (doc §2.2). The
real next prompt (from the very next call in the transcript) measures our estimate's error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import OPS_TRANSCRIPT, make_store

KEY = "agent:ops:incident-long"


def _lines(state: Path) -> list[bytes]:
    return (state / OPS_TRANSCRIPT).read_bytes().splitlines(keepends=True)


def _cut_after_compaction(state: Path) -> tuple[list[bytes], int]:
    lines = _lines(state)
    at = next(i for i, raw in enumerate(lines) if json.loads(raw)["type"] == "compaction")
    (state / OPS_TRANSCRIPT).write_bytes(b"".join(lines[: at + 1]))
    return lines, at


def _edit_row(state: Path, edit: dict[str, object], drop: tuple[str, ...]) -> None:
    path = state / "agents/ops/sessions/sessions.json"
    doc = json.loads(path.read_text())
    row = doc[KEY]
    for name in drop:
        row.pop(name, None)
    row.update(edit)
    tmp = path.with_name("sessions.json.123.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(path)


LAST_RUN = ("inputTokens", "outputTokens", "cacheRead", "cacheWrite", "estimatedCostUsd")


@pytest.mark.parametrize(
    ("case", "edit", "drop"),
    [
        # automatic compaction at run end: pre-compaction prompt kept, marked stale
        ("auto", {"totalTokens": 27869, "totalTokensFresh": False, "compactionCount": 1}, LAST_RUN),
        # sessions.compact: totalTokens removed
        ("manual", {"compactionCount": 1}, ("totalTokens", "totalTokensFresh", *LAST_RUN)),
    ],
)
def test_estimate_after_compaction_then_exact_after_next_call(
    small_state: Path, case: str, edit: dict[str, object], drop: tuple[str, ...]
) -> None:
    lines, at = _cut_after_compaction(small_state)
    _edit_row(small_state, edit, drop)
    store = make_store(small_state)
    row = store.scan().by_key[KEY]
    assert row.context_source == "estimate"
    assert row.snapshot_stale is True
    assert row.context_tokens is not None and row.context_tokens < 27869
    assert row.compaction_count == 1

    # The next user message arrives (prompt not sent yet): the estimate grows by it.
    with open(small_state / OPS_TRANSCRIPT, "ab") as fh:
        fh.write(lines[at + 1])
    grown = store.scan().by_key[KEY]
    assert grown.context_source == "estimate"
    assert grown.context_tokens is not None and grown.context_tokens > row.context_tokens
    real_next_prompt = json.loads(lines[at + 2])["message"]["usage"]["input"]
    assert real_next_prompt == 24989
    error = abs(grown.context_tokens - real_next_prompt) / real_next_prompt
    assert error < 0.03, f"estimate {grown.context_tokens} vs real {real_next_prompt}"

    # The call completes: its prompt is exact, even before OpenClaw rewrites the row.
    with open(small_state / OPS_TRANSCRIPT, "ab") as fh:
        fh.write(lines[at + 2])
    after = store.scan().by_key[KEY]
    assert after.context_source == "transcript"
    assert after.context_tokens == real_next_prompt
    assert after.context_pct == round(100 * real_next_prompt / 32000)


def test_openclaw_status_would_show_the_stale_number(small_state: Path) -> None:
    """What we fix: OpenClaw's status shows totalTokens (27869 = 87 %) after an auto compaction."""
    _cut_after_compaction(small_state)
    _edit_row(small_state, {"totalTokens": 27869, "totalTokensFresh": False}, LAST_RUN)
    row = make_store(small_state).scan().by_key[KEY]
    assert row.context_pct is not None and row.context_pct < 87


def test_fresh_looking_snapshot_equal_to_tokens_after_is_not_trusted(small_state: Path) -> None:
    """2026.9.6 writes totalTokens = tokensAfter, fresh, after a compaction with no call since."""
    lines = _lines(small_state)
    at = next(i for i, raw in enumerate(lines) if json.loads(raw)["type"] == "compaction")
    entry = json.loads(lines[at])
    entry["tokensAfter"] = 2869
    lines[at] = json.dumps(entry).encode() + b"\n"
    (small_state / OPS_TRANSCRIPT).write_bytes(b"".join(lines[: at + 1]))
    _edit_row(small_state, {"totalTokens": 2869, "totalTokensFresh": True}, LAST_RUN)
    snap = make_store(small_state).scan()
    row = snap.by_key[KEY]
    assert row.context_source == "estimate"
    assert row.context_tokens is not None and row.context_tokens > 20000
    assert snap.detail(KEY) is not None
    compaction = snap.detail(KEY).compactions[0]  # type: ignore[union-attr]
    assert compaction.tokens_before == 28002 and compaction.tokens_after == 2869
    assert compaction.estimated_tokens_after == row.context_tokens
