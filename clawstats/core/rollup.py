"""``Rollup``: the totals kept by delta, so a change to one transcript does not regroup all.

Transcripts are spread over a fixed number of blocks by a hash of their id; each block keeps
its bucket sums per (agent, day, model). A change re-sums only its block (a few hundred
transcripts at 50,000) and re-adds, over the blocks, only the (agent, day, model) sums that
block holds; the three groupings fold the few hundred (agent, day, model) sums. Block membership and the
order of every sum depend only on the set of transcripts and their values, never on the order
of changes, so a live server and a one-shot CLI over the same files print the same totals.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

from clawstats.core.catalog import Catalog
from clawstats.core.session import usage_totals
from clawstats.core.totals import GROUP_BY, HasBuckets, Totals
from clawstats.core.totals import _group as usage_group  # one definition of a group's fields
from clawstats.core.transcript import B_MISSING, B_UCR, B_UCW, B_UIN, B_UOUT, BUCKET_SIZE

BLOCKS = 256
_Combo = tuple[str, str, str]  # (agent, day, model)
_Sum = tuple[list[float], float]  # (summed bucket slots, USD priced for calls without a cost)


def block_of(stats_id: str) -> int:
    return zlib.crc32(stats_id.encode()) % BLOCKS


class Rollup:
    """Per-transcript buckets in, :class:`Totals` out; one writer (the store)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._members: list[dict[str, tuple[str, HasBuckets]]] = [{} for _ in range(BLOCKS)]
        self._sums: list[dict[_Combo, _Sum]] = [{} for _ in range(BLOCKS)]
        self._dirty: set[int] = set()
        self._combos: dict[_Combo, _Sum] = {}  # over all blocks, in block order
        self.blocks_summed = 0  # lifetime count, for tests: a change re-sums one block

    @property
    def dirty(self) -> bool:
        """Whether a change is waiting to be summed (the totals would differ)."""
        return bool(self._dirty)

    def put(self, stats_id: str, agent_id: str, stats: HasBuckets) -> None:
        block = block_of(stats_id)
        self._members[block][stats_id] = (agent_id, stats)
        self._dirty.add(block)

    def drop(self, stats_id: str) -> None:
        block = block_of(stats_id)
        if self._members[block].pop(stats_id, None) is not None:
            self._dirty.add(block)

    def _resum(self, block: int) -> None:
        sums: dict[_Combo, _Sum] = {}
        members = self._members[block]
        for stats_id in sorted(members):
            agent_id, stats = members[stats_id]
            for (day, model), bucket in stats.buckets.items():
                combo = (agent_id, day, model)
                found = sums.get(combo)
                acc, priced = (
                    ([a + b for a, b in zip(found[0], bucket, strict=True)], found[1]) if found else (list(bucket), 0.0)
                )
                if bucket[B_MISSING]:
                    tokens = (int(bucket[B_UIN]), int(bucket[B_UOUT]), int(bucket[B_UCR]), int(bucket[B_UCW]))
                    priced += self.catalog.price(agent_id, model, tokens) or 0.0
                sums[combo] = (acc, priced)
        self._sums[block] = sums
        self.blocks_summed += 1

    def totals(self, row_costs: Mapping[str, float], sessions: int) -> Totals:
        """Totals now; ``row_costs`` (row key -> USD) sum to ``totalCost`` exactly rounded."""
        touched: set[_Combo] = set()
        for block in sorted(self._dirty):
            touched.update(self._sums[block])
            self._resum(block)
            touched.update(self._sums[block])
        self._dirty.clear()
        for combo in touched:
            acc, priced, found = [0.0] * BUCKET_SIZE, 0.0, False
            for sums in self._sums:
                part = sums.get(combo)
                if part is not None:
                    found = True
                    for slot in range(BUCKET_SIZE):
                        acc[slot] += part[0][slot]
                    priced += part[1]
            if found:
                self._combos[combo] = (acc, priced)
            else:
                self._combos.pop(combo, None)
        groups: dict[str, dict[str, tuple[list[float], float]]] = {by: {} for by in GROUP_BY}
        for (agent_id, day, model), (acc, priced) in sorted(self._combos.items()):
            for by, name in (("model", model), ("agent", agent_id), ("day", day)):
                into = groups[by].get(name)
                if into is None:
                    groups[by][name] = (list(acc), priced)
                else:
                    for slot in range(BUCKET_SIZE):
                        into[0][slot] += acc[slot]
                    groups[by][name] = (into[0], into[1] + priced)
        built = {by: {name: usage_group(*groups[by][name]) for name in sorted(groups[by])} for by in GROUP_BY}
        by_agent = built["agent"]
        usage = [0, 0, 0, 0]
        calls = missing = 0
        for group in by_agent.values():
            usage[0] += group.usage.input
            usage[1] += group.usage.output
            usage[2] += group.usage.cache_read
            usage[3] += group.usage.cache_write
            calls += group.calls
            missing += group.missing_cost_entries
        return Totals(
            total_cost=math.fsum(row_costs.values()),
            calls=calls,
            usage=usage_totals(*usage),
            missing_cost_entries=missing,
            sessions=sessions,
            by_agent=by_agent,
            by_model=built["model"],
            by_day=built["day"],
        )
