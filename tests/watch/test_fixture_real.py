"""The engine against OpenClaw 2026.7.1's own views of the same store (captures/)."""

from __future__ import annotations

import math

import pytest

from clawstats.core.snapshot import Snapshot
from tests.conftest import REAL_SMALL, SMALL_STATE, capture, scan


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    return scan(SMALL_STATE)


def test_context_equals_openclaw_status(snap: Snapshot) -> None:
    recent = capture(REAL_SMALL, "cli-status.json")["sessions"]["recent"]
    assert len(recent) == 8
    for expected in recent:
        row = snap.by_key[expected["key"]]
        assert row.agent_id == expected["agentId"]
        assert row.session_id == expected["sessionId"]
        assert row.context_tokens == expected["totalTokens"]
        assert row.context_window == expected["contextTokens"]
        assert row.context_pct == expected["percentUsed"]
        assert row.context_window - row.context_tokens == expected["remainingTokens"]
        assert row.context_source == "snapshot"
        assert row.updated_at_ms == expected["updatedAt"]
        assert row.model == expected["selectedModel"]


def test_cost_equals_openclaw_sessions_usage(snap: Snapshot) -> None:
    usage = capture(REAL_SMALL, "rpc-sessions.usage-all.json")
    assert len(usage["sessions"]) == len(snap.rows)
    for expected in usage["sessions"]:
        row = snap.by_key[expected["key"]]
        assert math.isclose(row.total_cost, expected["usage"]["totalCost"], abs_tol=1e-9)
        assert row.usage.input == expected["usage"]["input"]
        assert row.usage.output == expected["usage"]["output"]
        assert row.usage.cache_read == expected["usage"]["cacheRead"]
        assert row.messages.user == expected["usage"]["messageCounts"]["user"]
        assert row.messages.assistant == expected["usage"]["messageCounts"]["assistant"]
        assert row.messages.tool_calls == expected["usage"]["messageCounts"]["toolCalls"]
        assert row.cost_source == "recorded"
        if expected.get("model"):
            assert row.model == f"{expected['modelProvider']}/{expected['model']}"
            assert row.updated_at_ms == expected["updatedAt"]
            assert not row.archived
        else:
            assert row.archived and row.context_tokens is None


def test_totals_equal_openclaw(snap: Snapshot) -> None:
    usage = capture(REAL_SMALL, "rpc-sessions.usage-all.json")
    totals = usage["totals"]
    assert math.isclose(snap.totals.total_cost, totals["totalCost"], abs_tol=1e-9)
    assert snap.totals.usage.input == totals["input"]
    assert snap.totals.usage.output == totals["output"]
    assert snap.totals.usage.cache_read == totals["cacheRead"]
    assert snap.totals.usage.total == totals["totalTokens"]
    for agent in usage["aggregates"]["byAgent"]:
        group = snap.totals.by_agent[agent["agentId"]]
        assert math.isclose(group.cost, agent["totals"]["totalCost"], abs_tol=1e-9)
        assert group.usage.total == agent["totals"]["totalTokens"]
    for model in usage["aggregates"]["byModel"]:
        group = snap.totals.by_model[f"{model['provider']}/{model['model']}"]
        assert math.isclose(group.cost, model["totals"]["totalCost"], abs_tol=1e-9)
        assert group.calls == model["count"]


def test_lifetime_cost_includes_the_reset_archive_when_its_owner_is_known(snap: Snapshot) -> None:
    # The bundled copy has no trajectory sidecars, so the archive's owner is unknown here:
    # it stands as its own archived row, and the live key's lifetime cost is its own.
    archive = next(r for r in snap.rows if r.archived)
    assert archive.key == "agent:main:02e6078a-0790-4990-9386-70a62f32cc51"
    assert archive.archived_from is None
    live = snap.by_key["agent:main:reset-me"]
    assert live.lifetime_cost == live.total_cost
    assert live.lifetime_cost is live.total_cost  # one float object when there is no earlier cost


def test_compaction_count_and_kinds(snap: Snapshot) -> None:
    ops = snap.by_key["agent:ops:incident-long"]
    assert ops.compaction_count == 1
    assert ops.last_compaction_at == "2026-11-24T17:08:06.725Z"
    assert snap.by_key["agent:main:subagent:c36758f8-1902-49b4-850e-b668a1bcfb97"].kind == "subagent"
    assert snap.by_key["agent:main:subagent:c36758f8-1902-49b4-850e-b668a1bcfb97"].spawned_by == "agent:main:research"
    assert snap.by_key["agent:main:main"].kind == "direct"


def test_healthy_and_nothing_skipped(snap: Snapshot) -> None:
    assert snap.health.status == "ok"
    assert snap.health.counters == {}
    assert snap.health.layouts == {"main": "file", "ops": "file"}
