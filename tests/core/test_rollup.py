"""``Rollup``: a change sums its own buckets and re-folds only the groups it is in, and the totals
equal those of a rollup given the same transcripts at once (the order of changes never shows)."""

from __future__ import annotations

import math
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


def test_a_change_sums_only_its_own_buckets() -> None:
    transcripts = _transcripts()
    rollup = _rollup_of(transcripts)
    rollup.totals(len(transcripts))
    summed, moved = rollup.transcripts_summed, rollup.buckets_summed
    agent, _old = transcripts["t7"]
    rollup.put("t7", (agent, Buckets({("2026-11-03", "mock-small"): _bucket(7000)})))
    rollup.totals(len(transcripts))
    # its one old bucket taken out and its one new bucket added: none of the other 359 transcripts
    assert (rollup.transcripts_summed - summed, rollup.buckets_summed - moved) == (1, 2)


def test_money_is_the_exact_sum_whatever_the_order_of_changes() -> None:
    """Floats summed one by one depend on the order (0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1); the
    rollup's sums are exact, rounded once: the same totals after any order of puts and drops."""
    amounts = [0.1, 0.2, 0.3, 1e16, -1e16 + 2.0, 1e-300, 0.7, 3.3e-5] * 5
    made = {
        f"t{n}": ("main", Buckets({(DAYS[n % 3], "mock-large"): Bucket(calls=1, recorded_usd=usd)}))
        for n, usd in enumerate(amounts)
    }
    forward = _rollup_of(made)
    backward = Rollup()
    backward.put("t0", made["t1"])  # a wrong value first, corrected later
    for stats_id in reversed(made):
        backward.put(stats_id, made[stats_id])
    backward.put("gone", ("ops", Buckets({("2026-12-01", "mock-small"): Bucket(calls=1, recorded_usd=0.1)})))
    backward.totals(len(made))
    backward.drop("gone")
    totals = forward.totals(len(made))
    assert backward.totals(len(made)) == totals
    assert totals.recorded_cost == round(math.fsum(amounts), 10) + 0.0
    assert sum(amounts) != sum(reversed(amounts))  # (the data is order-sensitive)
    assert set(totals.by_agent) == {"main"} and set(totals.by_model) == {"mock-large"}  # "ops" came and went
    for day in DAYS[:3]:
        assert totals.by_day[day].recorded_cost == round(math.fsum(amounts[DAYS.index(day) :: 3]), 10) + 0.0
