"""``Rollup``: a change re-sums its block and re-folds only the groups it is in, and the totals equal
those of a rollup given the same transcripts at once (the order of changes never shows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from clawstats.core.rollup import Rollup
from clawstats.core.usage import Bucket

AGENTS = ("main", "ops", "research")
MODELS = ("mock-large", "mock-small")
DAYS = tuple(f"2026-11-{day:02d}" for day in range(1, 31))


@dataclass(frozen=True)
class Buckets:
    buckets: Mapping[tuple[str, str], Bucket]


def _bucket(n: int) -> Bucket:
    return Bucket(calls=1 + n % 3, input=100 * n, output=n, total=101 * n, recorded_usd=0.001 * n + 1e-7 / (n + 1))


def _transcripts() -> dict[str, tuple[str, Buckets]]:
    """One transcript per (agent, day, model) twice over: 360 of them, 180 (agent, day, model) sums."""
    made: dict[str, tuple[str, Buckets]] = {}
    for n in range(360):
        agent, day, model = AGENTS[n % 3], DAYS[(n // 3) % 30], MODELS[(n // 90) % 2]
        made[f"t{n}"] = (agent, Buckets({(day, model): _bucket(n)}))
    return made


def _rollup_of(transcripts: dict[str, tuple[str, Buckets]]) -> Rollup:
    rollup = Rollup()
    for stats_id, member in transcripts.items():
        rollup.put(stats_id, member)
    return rollup


def test_a_change_refolds_only_its_groups_and_equals_a_fresh_rollup() -> None:
    transcripts = _transcripts()
    rollup = _rollup_of(transcripts)
    first = rollup.totals(len(transcripts))
    assert len(first.by_day) == 30 and len(first.by_agent) == 3 and len(first.by_model) == 2
    folded = rollup.groups_folded
    agent, _old = transcripts["t7"]
    transcripts["t7"] = (agent, Buckets({("2026-11-03", "mock-small"): _bucket(7000)}))
    rollup.put("t7", transcripts["t7"])
    changed = rollup.totals(len(transcripts))
    # t7 moved from ("ops", 11-03, large) to ("ops", 11-03, small): one agent, one day and two
    # models folded again, not all 35 groups
    assert rollup.groups_folded - folded == 4
    assert changed == _rollup_of(transcripts).totals(len(transcripts))
    assert changed != first


def test_a_group_whose_last_sum_goes_is_gone() -> None:
    transcripts = _transcripts()
    rollup = _rollup_of(transcripts)
    rollup.totals(len(transcripts))
    last_day = [s for s, (_agent, stats) in transcripts.items() if {day for day, _ in stats.buckets} == {DAYS[-1]}]
    for stats_id in last_day:
        rollup.drop(stats_id)
        del transcripts[stats_id]
    after = rollup.totals(len(transcripts))
    assert DAYS[-1] not in after.by_day and len(after.by_day) == 29
    assert after == _rollup_of(transcripts).totals(len(transcripts))
