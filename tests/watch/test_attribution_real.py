"""Trees, cron jobs, channels and turnsToCompaction on a store the real OpenClaw 2026.7.1 wrote."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from clawstats.core.forecast import compaction_config
from clawstats.core.snapshot import Snapshot
from tests.conftest import REAL_SQLITE, capture, scan
from tests.openclaw.attrib_data import (
    ATTRIB,
    ATTRIB_STATE,
    CRON_JOB,
    CRON_KEYS,
    DELETED_CHILD,
    DELETED_CHILD_ARCHIVE_KEY,
    DISCORD_KEY,
    GROW_TRANSCRIPTS,
    KEPT_CHILD,
    PARENT,
    TELEGRAM_KEY,
    attrib_state_with_channels,
)
from tests.openclaw.compaction_check import score


@pytest.fixture(scope="module")
def snap(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    return scan(attrib_state_with_channels(tmp_path_factory.mktemp("attrib") / "state"))


def openclaw_cost(key: str) -> float:
    """OpenClaw's own per-session cost (``sessions.usage``, captured from the running gateway)."""
    sessions = capture(ATTRIB, "rpc-sessions.usage.json")["sessions"]
    found = [s["usage"]["totalCost"] for s in sessions if s["key"] == key]
    assert len(found) == 1, key
    return float(found[0])


def test_parent_tree_cost_equals_openclaw_per_session_costs(snap: Snapshot) -> None:
    parent = snap.by_key[PARENT]
    expected = openclaw_cost(PARENT) + openclaw_cost(KEPT_CHILD) + openclaw_cost(DELETED_CHILD_ARCHIVE_KEY)
    assert parent.tree_cost is not None
    assert math.isclose(parent.tree_cost, expected, rel_tol=0, abs_tol=1e-9)
    assert math.isclose(parent.total_cost, openclaw_cost(PARENT), rel_tol=0, abs_tol=1e-9)
    # the cleaned-up child has no row any more; its archive hangs under its old key, under the parent
    assert DELETED_CHILD not in snap.by_key
    archive = snap.by_key[DELETED_CHILD_ARCHIVE_KEY]
    assert archive.archived and archive.parent_key == DELETED_CHILD
    assert snap.by_key[KEPT_CHILD].parent_key == PARENT


def test_detail_lists_children_with_their_cost(snap: Snapshot) -> None:
    detail = snap.detail(PARENT)
    assert detail is not None
    children = {c.key: c for c in detail.children}
    assert set(children) == {KEPT_CHILD, DELETED_CHILD}
    assert children[KEPT_CHILD].has_row and not children[DELETED_CHILD].has_row
    assert math.isclose(children[DELETED_CHILD].tree_cost, openclaw_cost(DELETED_CHILD_ARCHIVE_KEY), abs_tol=1e-9)


@pytest.mark.parametrize("by", ["model", "agent", "day", "parent", "cron", "channel", "kind"])
def test_every_grouping_sums_to_the_total(snap: Snapshot, by: str) -> None:
    groups = snap.usage(by)
    assert math.isclose(sum(g.cost for g in groups.values()), snap.totals.total_cost, rel_tol=0, abs_tol=1e-9)
    assert sum(g.calls for g in groups.values()) == snap.totals.calls
    assert sum(g.usage.total for g in groups.values()) == snap.totals.usage.total


def test_cron_job_sums_every_run(snap: Snapshot) -> None:
    # three `openclaw cron run` runs: the job's row holds the last one, the earlier transcripts have no row
    for key in CRON_KEYS:
        assert snap.by_key[key].cron_job == CRON_JOB, key
    groups = snap.usage("cron")
    expected = sum(openclaw_cost(key) for key in CRON_KEYS)
    assert math.isclose(groups[CRON_JOB].cost, expected, abs_tol=1e-9)
    assert groups[CRON_JOB].calls == 3
    # by parent the runs fold into the job's key
    parent_groups = snap.usage("parent")
    assert math.isclose(parent_groups[f"agent:main:cron:{CRON_JOB}"].cost, expected, abs_tol=1e-9)
    assert math.isclose(parent_groups[PARENT].cost, snap.by_key[PARENT].tree_cost or 0.0, abs_tol=1e-9)


def test_channels_from_row_and_from_key(snap: Snapshot) -> None:
    assert snap.by_key[TELEGRAM_KEY].channel == "telegram"  # the row says so
    assert snap.by_key[DISCORD_KEY].channel == "discord"  # only the key's shape says so
    groups = snap.usage("channel")
    assert {"telegram", "discord", "webchat", "(none)"} <= set(groups)
    assert math.isclose(groups["telegram"].cost, snap.by_key[TELEGRAM_KEY].total_cost or 0.0, abs_tol=1e-12)
    # the cleaned-up child's archive has no channel of its own: it counts for its top-level session's
    assert snap.by_key[DELETED_CHILD_ARCHIVE_KEY].channel is None
    assert math.isclose(groups["webchat"].cost, snap.by_key[PARENT].tree_cost or 0.0, abs_tol=1e-9)


def test_turns_to_compaction_on_the_real_compactions() -> None:
    """Prediction after every call vs the user turn on which OpenClaw's next automatic compaction came."""
    config = compaction_config(json.loads((ATTRIB_STATE / "openclaw.json").read_text()))
    assert config.legacy and config.reserve(32000) == 4000
    scored = []
    for path in GROW_TRANSCRIPTS:
        with path.open("rb") as fh:
            scored += score(fh, 32000, config)
    estimated = [s for s in scored if s.predicted is not None]
    within_one = [s for s in estimated if s.predicted is not None and abs(s.predicted - s.actual) <= 1]
    assert len(scored) >= 60 and len(estimated) >= 0.9 * len(scored)
    assert len(within_one) / len(estimated) >= 0.7  # measured 68/92 (74 %): docs/CONFORMANCE.md
    mean_error = sum(s.predicted - s.actual for s in estimated if s.predicted is not None) / len(estimated)
    assert abs(mean_error) < 0.5  # no large one-sided bias (measured -0.37)


def test_rows_carry_the_forecast(snap: Snapshot) -> None:
    grow = [row for row in snap.rows if row.key.startswith("agent:ops:grow-")]
    assert len(grow) == 3
    for row in grow:
        assert row.context_growth_per_turn is not None and row.context_growth_per_turn > 0
        assert row.turns_to_compaction is not None and row.turns_to_compaction >= 1
    short = snap.by_key[KEPT_CHILD]
    assert short.turns_to_compaction is None and short.turns_to_compaction_reason


def test_sqlite_store_tree_and_spawn_link(sqlite_state: Path) -> None:
    """2026.9.6 (SQLite): the spawn result is a nested-tool ``custom`` message; the tree still adds up."""
    snap = scan(sqlite_state)  # a copy: reading a WAL database creates -shm/-wal beside it
    child = "agent:main:subagent:d7329713-e298-471a-9bb6-aada815439b2"
    assert any(child in view.spawned for view in snap.views.values())  # found in the parent's transcript
    research = snap.by_key["agent:main:research"]
    usage = {s["key"]: s["usage"]["totalCost"] for s in capture(REAL_SQLITE, "rpc-sessions.usage-all.json")["sessions"]}
    assert math.isclose(research.tree_cost or 0.0, usage["agent:main:research"] + usage[child], abs_tol=1e-9)
    for by in ("parent", "cron", "channel", "kind"):
        groups = snap.usage(by)
        assert math.isclose(sum(g.cost for g in groups.values()), snap.totals.total_cost, abs_tol=1e-9)
        assert sum(g.calls for g in groups.values()) == snap.totals.calls


def test_kind_groups_chat_kinds(snap: Snapshot) -> None:
    groups = snap.usage("kind")
    assert {"direct", "group", "channel", "subagent", "cron"} <= set(groups)
    subagents = (snap.by_key[KEPT_CHILD].total_cost or 0.0) + (snap.by_key[DELETED_CHILD_ARCHIVE_KEY].total_cost or 0.0)
    assert math.isclose(groups["subagent"].cost, subagents, abs_tol=1e-9)  # the cleaned-up one's archive included
    assert math.isclose(groups["group"].cost, snap.by_key[TELEGRAM_KEY].total_cost or 0.0, abs_tol=1e-9)


def test_owned_transcripts_without_a_row_are_not_faults(snap: Snapshot) -> None:
    """Earlier cron runs keep their transcripts but lose their rows: normal OpenClaw, not a skip."""
    assert snap.health.counters.get("transcriptWithoutRow", 0) == 0, snap.health.by_file
    rows = {r.key: r for r in snap.rows}
    assert all(rows[key].cron_job == CRON_JOB for key in CRON_KEYS[1:])  # still rows, attributed
