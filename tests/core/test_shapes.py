"""Every transcript shape OpenClaw writes or once wrote, read as OpenClaw's own tests expect.

One small transcript per shape, with the calls, tokens, cost, model groups and message counts
expected and where the expectation comes from. Each shape is read three ways: by the pure core
(``TranscriptStats``), from a real file-layout state dir, and (where the shape can occur there)
from a SQLite-layout state dir with the lines as ``event_json`` rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from clawstats.core.catalog import catalog_from_config
from clawstats.core.figures import figure_of, summed
from clawstats.core.session import MessageCounts
from clawstats.core.snapshot import Snapshot
from tests.conftest import scan
from tests.core.lines import (
    Line,
    assistant,
    file_state,
    jsonl,
    model_change,
    model_snapshot,
    sqlite_state_with,
    stamp,
    stats_of,
    tool_result,
    usage,
    user,
    with_ids,
)

OC_TEST = "OpenClaw src/infra/session-cost-usage.test.ts"
PRICED_CONFIG = {
    "models": {
        "providers": {
            "openai": {
                "models": [{"id": "gpt-5.2", "cost": {"input": 1, "output": 2, "cacheRead": 0, "cacheWrite": 0}}]
            }
        }
    }
}


@dataclass(frozen=True)
class Shape:
    name: str
    source: str
    lines: list[Line]
    calls: int
    tokens: int
    cost: float
    groups: dict[str, int]  # model group -> calls
    messages: tuple[int, int, int, int, int]  # user, assistant, toolCalls, toolResults, errors
    row_model: str | None
    cost_source: str = "recorded"
    final_newline: bool = True
    bom: bool = False
    in_sqlite: bool = True  # the shape can occur as SQLite events
    config: dict[str, Any] | None = field(default=None)


def _ten_calls() -> list[Line]:
    return [assistant(use=usage(i, 2 * i, totalTokens=3 * i, cost=i * 0.001), ts=stamp(i)) for i in range(1, 11)]


SHAPES = [
    Shape(
        "last line without newline",
        f"issue 21 #1; {OC_TEST} 'summarizes a single session file' (no final newline)",
        [model_change("openai", "gpt-5.2"), assistant(use=usage(10, 20, totalTokens=30, cost=0.03), ts=stamp())],
        1,
        30,
        0.03,
        {"openai/gpt-5.2": 1},
        (0, 1, 0, 0, 0),
        "openai/gpt-5.2",
        final_newline=False,
    ),
    Shape(
        "ten calls without final newline",
        f"issue 21 #1; {OC_TEST} 'preserves totals and cumulative values when downsampling'",
        _ten_calls(),
        10,
        165,
        0.055,
        {"openai/gpt-5.2": 10},
        (0, 10, 0, 0, 0),
        "openai/gpt-5.2",
        final_newline=False,
    ),
    Shape(
        "model from model_change",
        "issue 21 #2 (OpenClaw writes model_change before the first call)",
        [model_change("openai-codex", "gpt-5.2"), assistant(None, None, usage(100, 50, cost=0.01), ts=stamp())],
        1,
        150,
        0.01,
        {"openai-codex/gpt-5.2": 1},
        (0, 1, 0, 0, 0),
        "openai-codex/gpt-5.2",
    ),
    Shape(
        "model from a model-snapshot custom entry",
        "issue 21 #2 (OpenClaw 2026.9 writes custom/model-snapshot)",
        [model_snapshot("openai-codex", "gpt-5.2"), assistant(None, None, usage(100, 50, cost=0.01), ts=stamp())],
        1,
        150,
        0.01,
        {"openai-codex/gpt-5.2": 1},
        (0, 1, 0, 0, 0),
        "openai-codex/gpt-5.2",
    ),
    Shape(
        "empty provider and model on the message",
        'issue 21 #2 ("provider":"","model":"")',
        [model_change("openai-codex", "gpt-5.2"), assistant("", "", usage(100, 50, cost=0.01), ts=stamp())],
        1,
        150,
        0.01,
        {"openai-codex/gpt-5.2": 1},
        (0, 1, 0, 0, 0),
        "openai-codex/gpt-5.2",
    ),
    Shape(
        "model_change with only modelId",
        "issue 21 #2",
        [model_change(None, "gpt-5.2"), assistant(None, None, usage(100, 50, cost=0.01), ts=stamp())],
        1,
        150,
        0.01,
        {"unknown/gpt-5.2": 1},
        (0, 1, 0, 0, 0),
        "unknown/gpt-5.2",
    ),
    Shape(
        "model without provider on the message",
        "issue 21 #2; OpenClaw groups it as unknown/<model> (applyCostTotal)",
        [assistant(None, "gpt-5.2", usage(100, 50, cost=0.01), ts=stamp())],
        1,
        150,
        0.01,
        {"unknown/gpt-5.2": 1},
        (0, 1, 0, 0, 0),
        "unknown/gpt-5.2",
    ),
    Shape(
        "bare-number usage.cost",
        f"issue 21 #3; {OC_TEST} 'handles flat number cost from OpenRouter'",
        [
            assistant(
                "openrouter",
                "meta-llama/llama-3.3-70b-instruct",
                usage(100, 50, totalTokens=150, cost=0.0042, bare=True),
                ts=stamp(),
            )
        ],
        1,
        150,
        0.0042,
        {"openrouter/meta-llama/llama-3.3-70b-instruct": 1},
        (0, 1, 0, 0, 0),
        "openrouter/meta-llama/llama-3.3-70b-instruct",
    ),
    Shape(
        "tool_use and tool_result blocks, error stop",
        f"issue 21 #4; {OC_TEST} 'captures message counts, tool usage, and model usage'",
        [
            user("Hello", ts=stamp(0)),
            assistant(
                use=usage(12, 18, totalTokens=30, cost=0.02),
                ts=stamp(5),
                stop="error",
                content=[
                    {"type": "text", "text": "Checking"},
                    {"type": "tool_use", "name": "weather"},
                    {"type": "tool_result", "is_error": True},
                ],
            ),
        ],
        1,
        30,
        0.02,
        {"openai/gpt-5.2": 1},
        (1, 1, 1, 1, 2),
        "openai/gpt-5.2",
    ),
    Shape(
        "tool_use block answered by a separate tool result",
        "issue 21 #4 (clawmetry v3 fixture shape)",
        [
            assistant(
                "anthropic",
                "claude-sonnet-4-5",
                usage(10, 5, cost=0.001),
                ts=stamp(),
                stop="toolUse",
                content=[{"type": "tool_use", "id": "toolu_1", "name": "exec", "input": {"cmd": "ls"}}],
            ),
            tool_result(),
        ],
        1,
        15,
        0.001,
        {"anthropic/claude-sonnet-4-5": 1},
        (0, 1, 1, 1, 0),
        "anthropic/claude-sonnet-4-5",
    ),
    Shape(
        "OpenClaw's own toolCall blocks, aborted and timeout stops",
        "OpenClaw transcripts; ERROR_STOP_REASONS of session-cost-usage (error, aborted, timeout)",
        [
            assistant(
                use=usage(10, 5, cost=0.001),
                ts=stamp(1),
                stop="toolUse",
                content=[{"type": "toolCall", "id": "c1", "name": "read", "arguments": {}}],
            ),
            tool_result(is_error=True),
            assistant(use=usage(10, 5, cost=0.001), ts=stamp(2), stop="aborted"),
            assistant(use=usage(10, 5, cost=0.001), ts=stamp(3), stop="timeout"),
        ],
        3,
        45,
        0.003,
        {"openai/gpt-5.2": 3},
        (0, 3, 1, 1, 3),
        "openai/gpt-5.2",
    ),
    Shape(
        "bookkeeping messages are not calls",
        "issue 21 #5; OpenClaw transcript-only-openclaw-assistant (delivery-mirror, gateway-injected)",
        [
            assistant(use=usage(10, 5, cost=0.001), ts=stamp(1)),
            assistant("openclaw", "delivery-mirror", usage(0, 0, totalTokens=0), ts=stamp(2)),
            assistant("openclaw", "gateway-injected", usage(0, 0), ts=stamp(3)),
            assistant(None, None, usage(0, 0), ts=stamp(4), openclawDeliveryMirror={"kind": "channel-final"}),
        ],
        1,
        15,
        0.001,
        {"openai/gpt-5.2": 1},
        (0, 4, 0, 0, 0),
        "openai/gpt-5.2",
    ),
    Shape(
        "UTF-8 BOM before the first line",
        "issue 21 #7",
        [model_change("openai-codex", "gpt-5.2"), assistant(None, None, usage(100, 50, cost=0.01), ts=stamp())],
        1,
        150,
        0.01,
        {"openai-codex/gpt-5.2": 1},
        (0, 1, 0, 0, 0),
        "openai-codex/gpt-5.2",
        bom=True,
        in_sqlite=False,
    ),
    Shape(
        "usage with only totalTokens",
        "issue 21 #8; OpenClaw computeUsageTokenTotals (usage.total ?? component sum)",
        [assistant(use={"totalTokens": 222}, ts=stamp())],
        1,
        222,
        0.0,
        {"openai/gpt-5.2": 1},
        (0, 1, 0, 0, 0),
        "openai/gpt-5.2",
        cost_source="unpriced",
    ),
    Shape(
        "repeated identical lines count twice",
        "issue 21 (ccusage drops duplicates; OpenClaw's per-transcript sum counts each line)",
        [
            {"id": "dup", **assistant(use=usage(10, 5, cost=0.01), ts=stamp(1))},
            {"id": "dup", **assistant(use=usage(10, 5, cost=0.01), ts=stamp(1))},
        ],
        2,
        30,
        0.02,
        {"openai/gpt-5.2": 2},
        (0, 2, 0, 0, 0),
        "openai/gpt-5.2",
    ),
    Shape(
        "recorded cost plus a call priced from the config",
        f"{OC_TEST} 'aggregates daily totals with log cost and pricing fallback' (all days counted)",
        [
            assistant(use=usage(10, 20, totalTokens=30, cost=0.03), ts=stamp(1)),
            assistant(use=usage(10, 10, totalTokens=20), ts=stamp(2)),
            assistant(use=usage(5, 5, totalTokens=10, cost=0.01), ts=stamp(3, "2026-10-15")),
        ],
        3,
        60,
        0.04003,
        {"openai/gpt-5.2": 3},
        (0, 3, 0, 0, 0),
        "openai/gpt-5.2",
        cost_source="computed",
        config=PRICED_CONFIG,
    ),
]


def _check(shape: Shape, snap: Snapshot, sid: str) -> None:
    row = snap.by_key[f"agent:main:{sid}"]
    assert math.isclose(row.total_cost, shape.cost, abs_tol=1e-12), shape.source
    assert row.usage.total == shape.tokens
    assert row.messages == MessageCounts(*shape.messages)
    assert row.model == shape.row_model
    assert row.cost_source == shape.cost_source
    assert snap.totals.calls == shape.calls
    assert {model: group.calls for model, group in snap.totals.by_model.items()} == shape.groups
    assert math.isclose(snap.totals.total_cost, shape.cost, abs_tol=1e-12)
    assert snap.health.counters == {}, snap.health.counters


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_core(shape: Shape) -> None:
    price = catalog_from_config(shape.config).pricer("main") if shape.config else None
    stats = stats_of(shape.lines, price)
    figure = figure_of(summed([("main", stats)], ())[()])
    assert (figure.calls, figure.usage.total) == (shape.calls, shape.tokens), shape.source
    assert math.isclose(figure.cost, shape.cost, abs_tol=1e-12)
    assert (stats.user, stats.assistant, stats.tool_calls, stats.tool_results, stats.errors) == shape.messages
    assert stats.model == shape.row_model
    assert {model: b.calls for (_day, model), b in stats.buckets.items() if b.calls} == shape.groups or len(
        {day for day, _m in stats.buckets}
    ) > 1


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_file_layout(tmp_path: Path, shape: Shape) -> None:
    data = jsonl(with_ids(shape.lines) if "id" not in shape.lines[0] else shape.lines, shape.final_newline, shape.bom)
    _check(shape, scan(file_state(tmp_path, {"s1": data}, config=shape.config)), "s1")


@pytest.mark.parametrize("shape", [s for s in SHAPES if s.in_sqlite], ids=[s.name for s in SHAPES if s.in_sqlite])
def test_sqlite_layout(tmp_path: Path, shape: Shape) -> None:
    lines = with_ids(shape.lines) if "id" not in shape.lines[0] else shape.lines
    _check(shape, scan(sqlite_state_with(tmp_path, {"s1": lines}, config=shape.config)), "s1")


def test_event_copied_into_a_fork_counts_in_both(tmp_path: Path) -> None:
    """tokscale drops an event copied into a fork; OpenClaw sums each transcript: both count."""
    call = {"id": "shared", **assistant(use=usage(10, 5, cost=0.01), ts=stamp(1))}
    state = file_state(tmp_path, {"parent": jsonl([call]), "fork": jsonl([call, user(ts=stamp(2))])})
    snap = scan(state)
    assert snap.totals.calls == 2 and math.isclose(snap.totals.total_cost, 0.02, abs_tol=1e-12)


@pytest.mark.parametrize(
    ("name", "counted"),
    [
        ("old.jsonl.reset.2026-11-24T10-00-00.123Z", True),  # OpenClaw 2026.7+
        ("old.jsonl.deleted.2026-11-24T10-00-00Z.0123456789abcdef0123456789abcdef", True),  # with its hex suffix
        ("old.jsonl.deleted.1795540000000", True),  # epoch-ms stamp (issue 21 #6; ccusage and tokscale read it)
        ("old.jsonl.deleted.2026-11-24T10:00:00.000Z", True),
        ("old.jsonl.bak.2026-11-24T10-00-00Z", False),  # a backup, not usage (OpenClaw does not count it)
        ("old.jsonl.pre-doctor-branch-repair-2026-11-24T10-00-00-000Z.bak", False),  # doctor's backup
        ("old.jsonl.migrated", False),  # migration rollback copy
    ],
)
def test_archive_names(tmp_path: Path, name: str, counted: bool) -> None:
    call = jsonl(with_ids([assistant(use=usage(10, 5, cost=0.01), ts=stamp())]))
    snap = scan(file_state(tmp_path, {"live": jsonl([user(ts=stamp())]), name: call}))
    assert snap.totals.calls == (1 if counted else 0)
    if counted:
        assert snap.by_key["agent:main:old"].archived
