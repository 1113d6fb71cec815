"""Pure attribution, forecast and burn-rate math."""

from __future__ import annotations

import math
import random

import msgspec
import pytest

from clawstats.core.attribution import annotate, build_tree, channel_of, cron_job_key, cron_job_of, spawn_links
from clawstats.core.burnrate import HOUR_MS, burn_rate
from clawstats.core.enrich import MEMO_MIN_CALLS, enrich, foresee
from clawstats.core.enricher import Enricher
from clawstats.core.forecast import CompactionConfig, compaction_config, forecast, growth_per_turn, turns_to_compaction
from clawstats.core.session import MessageCounts, SessionRow, UsageTotals
from clawstats.core.snapshot import TranscriptView
from tests.core.lines import assistant, stamp, stats_of, usage, user, with_ids

DAY0 = 1_796_083_200_000.0  # 2026-12-01T00:00:00Z


def row(key: str, cost: float, *, parent: str | None = None, archived_from: str | None = None) -> SessionRow:
    return SessionRow(
        key=key,
        model=None,
        context_tokens=None,
        context_pct=None,
        total_cost=cost,
        updated_at=None,
        agent_id="main",
        session_id=None,
        kind="direct",
        context_window=None,
        context_window_source=None,
        context_source="unknown",
        snapshot_stale=False,
        cost_source="recorded",
        lifetime_cost=cost,
        missing_cost_entries=0,
        usage=UsageTotals(),
        messages=MessageCounts(),
        compaction_count=0,
        last_compaction_at=None,
        updated_at_ms=None,
        archived=archived_from is not None,
        archived_from=archived_from,
        parent_key=parent,
    )


def test_cron_and_channel_from_keys() -> None:
    assert cron_job_of("cron:nightly") == "nightly"
    assert cron_job_of("agent:main:cron:job1:run:abc") == "job1"
    assert cron_job_of("agent:main:main") is None
    assert cron_job_key("agent:main:cron:job1:run:abc") == "agent:main:cron:job1"
    assert cron_job_key("agent:main:cron:job1") is None
    assert channel_of("agent:main:telegram:group:-100", None) == "telegram"
    assert channel_of("agent:main:telegram:group:-100", "whatsapp") == "whatsapp"
    assert channel_of("agent:main:main", None) is None
    assert channel_of("agent:main:subagent:x:group:y", None) is None


def test_tree_cost_counts_each_transcript_once_up_to_the_root() -> None:
    rows = [
        row("agent:main:root", 1.0),
        row("agent:main:root-old", 0.5, archived_from="agent:main:root"),
        row("agent:main:subagent:a", 0.25, parent="agent:main:root"),
        row("agent:main:subagent:b", 0.125, parent="agent:main:subagent:a"),  # depth 2
        row("agent:main:gone-archive", 0.0625, archived_from="agent:main:subagent:gone"),  # cleaned-up child
    ]
    tree = build_tree(rows, spawn_links([("agent:main:root", ["agent:main:subagent:gone"])]))
    assert tree.tree_cost["agent:main:root"] == 1.0 + 0.5 + 0.25 + 0.125 + 0.0625
    assert tree.tree_cost["agent:main:subagent:a"] == 0.375
    assert tree.tree_cost["agent:main:subagent:gone"] == 0.0625
    assert {tree.roots[r.key] for r in rows} == {"agent:main:root"}
    assert sorted(tree.children["agent:main:root"]) == [
        "agent:main:root-old",
        "agent:main:subagent:a",
        "agent:main:subagent:gone",
    ]


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_a_tree_cost_is_the_same_whatever_the_order_of_the_rows(order: int) -> None:
    """Summed in row order, 0.739392 or 0.7393919999999999 (rows come in a set's order): a tree
    cost is rounded as every published amount is, so the figure does not depend on it."""
    costs = [0.008884, 0.051939, 0.078569, 0.1, 0.2, 0.3]
    kids = [row(f"agent:main:subagent:{n}", cost, parent="agent:main:top") for n, cost in enumerate(costs)]
    kids = kids[order:] + kids[:order] if order % 2 == 0 else kids[::-1][order:] + kids[::-1][:order]
    tree = build_tree([row("agent:main:top", 0.0), *kids], {})
    assert tree.tree_cost["agent:main:top"] == 0.739392
    assert repr(annotate([row("agent:main:top", 0.0)], tree)[0].tree_cost) == "0.739392"


def test_a_lineage_cycle_ends() -> None:
    rows = [row("a", 1.0, parent="b"), row("b", 2.0, parent="a")]
    tree = build_tree(rows, {})
    assert tree.tree_cost == {"a": 3.0, "b": 3.0}
    assert set(tree.roots.values()) <= {"a", "b"}


def test_reserve_per_release() -> None:
    # 2026.8+: min(20000, window / 4)
    assert CompactionConfig().reserve(128_000) == 20_000
    assert CompactionConfig().reserve(32_000) == 8_000
    # 2026.7: max(reserveTokens or 16384, floor or 20000), capped to leave min(8000, window/2) for the prompt
    assert CompactionConfig(legacy=True).reserve(128_000) == 20_000
    assert CompactionConfig(legacy=True).reserve(32_000) == 20_000
    assert CompactionConfig(legacy=True).reserve(12_000) == 6_000
    assert CompactionConfig(reserve_tokens=4000, reserve_tokens_floor=0, legacy=True).reserve(32_000) == 4_000
    cfg = compaction_config({"agents": {"defaults": {"compaction": {"reserveTokens": 4000, "enabled": False}}}})
    assert cfg.legacy and not cfg.enabled and cfg.reserve_tokens == 4000
    assert compaction_config(None) == CompactionConfig()


def test_growth_is_the_median_of_recent_turns_without_compaction_drops() -> None:
    after = [1000, 1100, 1300, 1400, 600, 700, 800]
    dropped = [False, False, False, False, True, False, False]
    assert growth_per_turn(after, dropped) == 100  # deltas 100, 200, 100, 100, 100 (the drop skipped)
    assert growth_per_turn([1000, 1100], [False, False]) is None


def test_turns_to_compaction() -> None:
    cfg = CompactionConfig(reserve_tokens=4000, reserve_tokens_floor=0, legacy=True)  # threshold 28000
    # after turn n the context is 27000 + 500n; with a 300-token next message: 27800 + 300 >= 28000 at n=2
    assert turns_to_compaction(27_000, 32_000, 500, cfg, next_message=300).turns == 2
    assert turns_to_compaction(27_000, 32_000, 500, cfg).turns == 2  # 28000 reached after turn 2
    assert turns_to_compaction(27_900, 32_000, 500, cfg, next_message=300).turns == 1
    assert turns_to_compaction(28_001, 32_000, 500, cfg).turns == 1
    assert turns_to_compaction(20_000, 32_000, 0, cfg).reason == "context not growing"
    assert turns_to_compaction(None, 32_000, 10, cfg).turns is None
    assert turns_to_compaction(20_000, 32_000, 10, CompactionConfig(enabled=False)).turns is None
    # after a compaction with no call since, the estimate clawstats shows is the starting point;
    # growth 1000, replies of 200 tokens: the next message is ~800 -> 10000 + 1000n + 800 >= 28000 at n=18
    calls, prompts, outputs = [1.0, 2.0, 3.0], [20_000, 21_000, 22_000], [200, 200, 200]
    growth, left = forecast(calls, prompts, outputs, [4.0], 32_000, cfg, 10_000)
    assert growth == 1000 and left.turns == 18
    growth, left = forecast(calls, prompts, outputs, [4.0], 32_000, cfg)
    assert left.turns is None and left.reason


def test_burn_rate_and_projection_range() -> None:
    now = DAY0 + 12 * HOUR_MS  # noon UTC: 12 hours left
    calls = [(now - 0.5 * HOUR_MS, 2.0), (now - 1.5 * HOUR_MS, 1.0), (now - 30 * HOUR_MS, 100.0), (now + 1, 9.0)]
    burn = burn_rate(calls, now, daily_budget_usd=10.0)
    assert burn.last_hour_usd == 2.0 and burn.last_24h_usd == 3.0 and burn.today_usd == 3.0
    assert burn.rate_usd_per_hour.low == 0.0 and burn.rate_usd_per_hour.high == 2.0
    assert math.isclose(burn.rate_usd_per_hour.expected, 0.5)
    assert burn.projected_day_usd.low == 3.0
    assert math.isclose(burn.projected_day_usd.expected, 3.0 + 0.5 * 12)
    assert math.isclose(burn.projected_day_usd.high, 3.0 + 2.0 * 12)
    assert burn.budget_reached_at is None  # 7 USD to go at 0.5 USD/h: not before the day ends
    soon = burn_rate(calls, now, daily_budget_usd=4.0)
    assert soon.budget_reached_at == "2026-12-01T14:00:00.000Z"  # 1 USD to go at 0.5 USD/h
    reached = burn_rate(calls, now, daily_budget_usd=2.5)
    assert reached.budget_reached_at == "2026-12-01T11:30:00.000Z"  # the call that crossed it
    idle = burn_rate([], now)
    assert (idle.projected_day_usd.low, idle.projected_day_usd.high, idle.budget_reached_at) == (0.0, 0.0, None)


@pytest.mark.parametrize("hours_left", [0.25, 6.0, 23.5])
def test_projection_never_below_what_is_spent(hours_left: float) -> None:
    now = DAY0 + (24 - hours_left) * HOUR_MS
    burn = burn_rate([(now - 10.0, 1.0)], now)
    assert burn.projected_day_usd.low <= burn.projected_day_usd.expected <= burn.projected_day_usd.high
    assert burn.projected_day_usd.low >= burn.today_usd


def test_the_forecast_memo_keeps_long_timelines_only_and_gives_what_a_fresh_forecast_does() -> None:
    def calls(n: int) -> TranscriptView:
        lines = []
        for turn in range(n):
            lines += [user(ts=stamp(turn % 60)), assistant(use=usage(1_000 + 500 * turn, 10, cost=0.01))]
        return TranscriptView.of("main", stats_of(with_ids(lines)))

    short, long = calls(3), calls(MEMO_MIN_CALLS)
    config, memo = CompactionConfig(), {}
    rows = {key: msgspec.structs.replace(row(key, 0.03), context_window=200_000, context_tokens=20_000) for key in "sl"}
    first = {key: foresee(rows[key], view, config, memo) for key, view in (("s", short), ("l", long))}
    assert set(memo) == {"l"}  # an idle short session keeps no memo entry (~200 bytes each)
    kept = memo["l"]
    again = {key: foresee(rows[key], view, config, memo) for key, view in (("s", short), ("l", long))}
    assert memo["l"] is kept and set(memo) == {"l"}  # the long one was answered from the memo
    assert again == first == {key: foresee(rows[key], view, config, {}) for key, view in (("s", short), ("l", long))}
    assert first["l"].context_growth_per_turn == 500


def test_a_leaf_rows_tree_cost_is_its_own_cost_object() -> None:
    """Most rows have no children: their tree cost (kept in the tree and in the row) is their
    own cost's float object, not a copy (24 bytes each, twice, at 50,000 rows)."""
    leaf, parent = row("agent:main:leaf", 0.25, parent="agent:main:top"), row("agent:main:top", 0.5)
    tree = build_tree([leaf, parent], {})
    assert tree.tree_cost["agent:main:leaf"] is leaf.total_cost
    assert tree.tree_cost["agent:main:top"] == 0.75
    (annotated,) = annotate([leaf], tree)
    assert annotated.tree_cost is leaf.total_cost


def test_a_new_child_of_a_cron_run_whose_row_goes_in_the_same_update_hangs_under_the_job() -> None:
    """A cron run's row removed while a row spawned by that run comes (one rewrite of
    ``sessions.json``): the run is a placeholder under its job, as the whole pass makes it, so
    the child's root is the job and the job's tree cost counts the child."""
    job, run, other = "agent:main:cron:J", "agent:main:cron:J:run:R", "agent:main:other"
    child = "agent:main:subagent:c"
    compaction = CompactionConfig()
    enricher = Enricher()
    first = {key: row(key, cost) for key, cost in ((job, 0.1), (run, 0.2), (other, 0.3))}
    served = enricher.update(first, {}, set(first), set(), {}, compaction, added=set(first))
    base = {job: first[job], other: first[other], child: row(child, 0.4, parent=run)}
    served = {key: value for key, value in served.items() if key != run} | {child: base[child]}
    served |= enricher.update(base, {}, {child}, {run}, served, compaction, added={child})
    whole = {value.key: value for value in enrich(list(base.values()), {}, compaction)}
    assert served[child].root_key == whole[child].root_key == job
    assert served[job].tree_cost == whole[job].tree_cost == 0.5
    assert served == whole


def test_a_rows_tree_cost_follows_its_own_cost_after_it_became_a_parent() -> None:
    """A row added plain whose cost moved while plain, then a parent (a child row came before
    its transcript named the spawn), then back to the cost it was added with (its transcript
    gone, or replaced): its tree cost is summed again, as the whole pass sums it."""
    parent, child, other = "agent:main:p", "agent:main:subagent:c", "agent:main:other"
    compaction = CompactionConfig()
    enricher = Enricher()
    built: dict[str, SessionRow] = {}
    served: dict[str, SessionRow] = {}

    def update(rows: list[SessionRow]) -> None:
        added = {each.key for each in rows if each.key not in served}
        fresh = {each.key: each for each in rows}
        built.update(fresh)
        served.update(fresh)  # the table holds the rows just built until enriched (a publisher's patch)
        served.update(enricher.update(built, {}, set(fresh), set(), served, compaction, added=added))

    update([row(other, 0.1)])  # the first (whole) pass
    update([row(parent, 0.0)])
    update([row(parent, 2.0)])
    update([row(child, 0.2, parent=parent)])
    assert served[parent].tree_cost == 2.2
    update([row(parent, 0.0)])
    whole = {value.key: value for value in enrich(list(built.values()), {}, compaction)}
    assert served[parent].tree_cost == whole[parent].tree_cost == 0.2
    assert served == whole
    assert enricher.full_passes == 1


@pytest.mark.parametrize("seed", range(150))
def test_the_kept_tree_gives_what_the_whole_pass_gives_after_any_changes(seed: int) -> None:
    """Random rewrites (rows added, removed, their cost or parent changed; cron runs, parents
    with no row, archives), each enriched as a publisher's patch does: the served rows are
    always those a whole pass over the rows as built gives."""
    rnd = random.Random(seed)
    compaction = CompactionConfig()
    enricher = Enricher()
    built: dict[str, SessionRow] = {}
    served: dict[str, SessionRow] = {}

    def some_key() -> str:
        pick = rnd.random()
        if pick < 0.15:
            return f"agent:main:cron:J{rnd.randrange(2)}:run:R{rnd.randrange(5)}"
        return f"agent:main:cron:J{rnd.randrange(2)}" if pick < 0.25 else f"agent:main:k{rnd.randrange(30)}"

    def some_row(key: str) -> SessionRow:
        cost = rnd.choice([0.0, 0.1, 0.2, 0.3, 0.7, 2.0])
        up = rnd.choice(sorted(built)) if built and rnd.random() < 0.5 else some_key() if rnd.random() < 0.2 else None
        if built and rnd.random() < 0.15:
            return row(key, cost, archived_from=rnd.choice(sorted(built)))
        return row(key, cost, parent=up if up != key else None)

    for _ in range(40):
        fresh: dict[str, SessionRow] = {}
        removed: set[str] = set()
        for _ in range(rnd.choice([1, 1, 2, 3])):
            key = some_key() if rnd.random() < 0.5 or not built else rnd.choice(sorted(built))
            if rnd.random() < 0.25 and key in built and key not in fresh:
                removed.add(key)
            elif key not in removed:
                same_links = key in built and rnd.random() < 0.6
                fresh[key] = (
                    msgspec.structs.replace(built[key], total_cost=rnd.choice([0.0, 0.1, 0.25, 2.0]))
                    if same_links
                    else some_row(key)
                )
        for key in removed:
            del built[key], served[key]
        added = {key for key in fresh if key not in served}
        built.update(fresh)
        served.update(fresh)
        served.update(enricher.update(built, {}, set(fresh), removed, served, compaction, added=added))
        whole = {value.key: value for value in enrich(list(built.values()), {}, compaction)}
        assert served == whole
