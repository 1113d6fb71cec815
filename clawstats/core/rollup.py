"""``Rollup``: the totals kept by delta, so a change to one transcript does not regroup all.

Transcripts are spread over a fixed number of blocks by a hash of their id; each block keeps
its buckets summed per (agent, day, model). A change re-sums only its block (a few hundred
transcripts at 50,000) and re-adds, over the blocks, only the (agent, day, model) sums that
block holds; the totals and their three groupings fold the few hundred (agent, day, model)
sums with :func:`figure_of`, as :func:`compute_totals` does over every transcript. A grouping
(one agent, one day, one model) is folded again only when one of its sums changed: a change to
one transcript of one day re-folds three groups, not the hundreds a long history has. Block
membership and the order of every sum depend only on the set of transcripts and their values,
never on the order of changes.
"""

from __future__ import annotations

import zlib

from clawstats.core.figures import HasBuckets, figure_of, summed
from clawstats.core.totals import GROUP_BY, Totals, UsageGroup, totals_of
from clawstats.core.usage import Bucket

BLOCKS = 256
_Combo = tuple[str, ...]  # (agent, day, model)
_BY = ("agent", "day", "model")


def block_of(stats_id: str) -> int:
    return zlib.crc32(stats_id.encode()) % BLOCKS


class Rollup:
    """Per-transcript buckets in, :class:`Totals` out; one writer (the store)."""

    def __init__(self) -> None:
        self._members: list[dict[str, tuple[str, HasBuckets]]] = [{} for _ in range(BLOCKS)]
        self._sums: list[dict[_Combo, Bucket]] = [{} for _ in range(BLOCKS)]
        self._dirty: set[int] = set()
        self._combos: dict[_Combo, Bucket] = {}  # over all blocks, in block order
        # Per grouping and name (e.g. "day", "2026-11-24"): the (agent, day, model) sums it folds,
        # and its published figure, folded again only when one of those sums changed.
        self._members_of: dict[str, dict[str, set[_Combo]]] = {by: {} for by in GROUP_BY}
        self._groups: dict[str, dict[str, UsageGroup]] = {by: {} for by in GROUP_BY}
        self.blocks_summed = 0  # lifetime count, for tests: a change re-sums one block
        self.groups_folded = 0  # lifetime count, for tests: a change re-folds the groups it is in

    @property
    def dirty(self) -> bool:
        """Whether a change is waiting to be summed (the totals would differ)."""
        return bool(self._dirty)

    def put(self, stats_id: str, member: tuple[str, HasBuckets]) -> None:
        """Count ``member`` (agent id, buckets) for ``stats_id``; the caller's tuple is kept as it
        is (the store keeps the same one for its snapshot: 56 bytes a transcript, not twice)."""
        block = block_of(stats_id)
        self._members[block][stats_id] = member
        self._dirty.add(block)

    def drop(self, stats_id: str) -> None:
        block = block_of(stats_id)
        if self._members[block].pop(stats_id, None) is not None:
            self._dirty.add(block)

    def totals(self, sessions: int, unknown_sessions: int = 0) -> Totals:
        """Totals now, over every transcript put (each once)."""
        touched: set[_Combo] = set()
        for block in sorted(self._dirty):
            old = self._sums[block]
            members = self._members[block]
            new = self._sums[block] = summed([members[sid] for sid in sorted(members)], _BY)
            self.blocks_summed += 1
            # Only the (agent, day, model) sums this block changed are re-added over the blocks.
            touched.update(combo for combo in old.keys() | new.keys() if old.get(combo) != new.get(combo))
        self._dirty.clear()
        for combo in touched:
            acc: Bucket | None = None
            for sums in self._sums:
                part = sums.get(combo)
                if part is None:
                    continue
                if acc is None:
                    acc = part.copy()
                else:
                    acc.add(part)
            if acc is None:
                self._combos.pop(combo, None)
            else:
                self._combos[combo] = acc
        self._regroup(touched)
        return self._fold(sessions, unknown_sessions)

    def _regroup(self, touched: set[_Combo]) -> None:
        """Fold again the groups holding a touched (agent, day, model) sum, each over its sums in
        sorted order (the order a fold over every sum gives each group)."""
        for by in GROUP_BY:
            at = _BY.index(by)
            members_of, groups = self._members_of[by], self._groups[by]
            names: set[str] = set()
            for combo in touched:
                name = combo[at]
                names.add(name)
                if combo in self._combos:
                    members_of.setdefault(name, set()).add(combo)
                elif name in members_of:
                    members_of[name].discard(combo)
            for name in names:
                combos = sorted(members_of.get(name, ()))
                if not combos:
                    members_of.pop(name, None)
                    groups.pop(name, None)
                    continue
                acc = self._combos[combos[0]].copy()
                for combo in combos[1:]:
                    acc.add(self._combos[combo])
                groups[name] = figure_of(acc)
                self.groups_folded += 1

    def _fold(self, sessions: int, unknown_sessions: int) -> Totals:
        total = Bucket()
        for _combo, bucket in sorted(self._combos.items()):
            total.add(bucket)
        built = {by: {name: groups[name] for name in sorted(groups)} for by, groups in self._groups.items()}
        return totals_of(figure_of(total), built, sessions, unknown_sessions)
