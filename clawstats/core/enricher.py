"""``Enricher``: the served rows' lineage, tree cost and forecast, kept across scans.

The store (one writer) hands it the rows as built (before enrichment), the keys rebuilt and
removed in one scan and the rows served now; :meth:`Enricher.update` returns only the rows whose
enriched form differs from what is served. An append that moves no lineage (the common case: a
transcript grows, its parent, archive owner and spawned children are what they were) costs the
rebuilt rows and their ancestors: each ancestor's tree cost is summed again from its children.
Anything else (a row added or removed, a parent or spawn link that moved, a cycle, a chain
deeper than the tree's depth guard) builds the whole tree again, as :func:`enrich` does. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from clawstats.core.attribution import MAX_DEPTH, Tree, annotate
from clawstats.core.enrich import ForecastMemo, Timeline, foresee, tree_of
from clawstats.core.forecast import CompactionConfig
from clawstats.core.session import SessionRow

#: What a row contributes to the tree's shape: its own parent, the key it is an archive of, the
#: children its transcript spawned.
Shape = tuple[str | None, str | None, tuple[str, ...]]


def _shape(row: SessionRow, view: Timeline | None) -> Shape:
    return (row.parent_key, row.archived_from, tuple(view.spawned) if view is not None else ())


class Enricher:
    """Lineage and forecast state of the served rows (see the module docstring)."""

    def __init__(self) -> None:
        self.memo: ForecastMemo = {}
        self.tree: Tree | None = None
        self.full_passes = 0  # whole-tree builds (a test pins that an append needs none)
        self._shapes: dict[str, Shape] = {}
        self._costs: dict[str, float] = {}  # the built rows' own costs (None counts 0)

    def update(
        self,
        base: Mapping[str, SessionRow],
        views: Mapping[str, Timeline],
        rebuilt: Iterable[str],
        removed: Iterable[str],
        served: Mapping[str, SessionRow],
        compaction: CompactionConfig,
    ) -> dict[str, SessionRow]:
        gone = set(removed)
        fresh = {key for key in rebuilt if key in base}
        for key in gone:
            self.memo.pop(key, None)
        moved = self._follow(base, views, fresh, gone)
        if moved is None:
            self.full_passes += 1
            self.tree = tree_of(list(base.values()), views)
            self._shapes = {key: _shape(row, views.get(key)) for key, row in base.items()}
            self._costs = {key: row.total_cost or 0.0 for key, row in base.items()}
            moved = set(base)
        tree = self.tree
        assert tree is not None
        out: dict[str, SessionRow] = {}
        for row in annotate([base[key] for key in fresh], tree):
            out[row.key] = foresee(row, views.get(row.key), compaction, self.memo)
        parents, roots, costs = tree.parents, tree.roots, tree.tree_cost
        for key in moved:
            built = base.get(key)
            now = served.get(key)
            if key in fresh or built is None or now is None:
                continue
            lineage = (parents.get(key), roots.get(key), costs.get(key, built.total_cost))
            if (now.parent_key, now.root_key, now.tree_cost) != lineage:
                out[key] = msgspec.structs.replace(
                    now, parent_key=lineage[0], root_key=lineage[1], tree_cost=lineage[2]
                )
        return out

    def _follow(
        self, base: Mapping[str, SessionRow], views: Mapping[str, Timeline], fresh: set[str], gone: set[str]
    ) -> set[str] | None:
        """Update the kept tree for rebuilt rows whose shape did not move: the tree cost of each
        one's chain of ancestors. Returns the row keys whose lineage fields may have moved, or
        None when the whole tree must be built again."""
        tree = self.tree
        if tree is None or gone:
            return None
        for key in fresh:
            if self._shapes.get(key) != _shape(base[key], views.get(key)):
                return None  # a new row, or its parent, archive owner or spawned children moved
        chains: list[list[str]] = []
        for key in fresh:
            cost = base[key].total_cost or 0.0
            if self._costs.get(key) == cost:
                continue
            self._costs[key] = cost
            chain: list[str] = []
            node: str | None = key
            while node is not None:
                if node in chain or len(chain) >= MAX_DEPTH:
                    return None  # a cycle or a chain past the guard: the full pass's rules apply
                chain.append(node)
                node = tree.parents.get(node)
            chains.append(chain)
        touched: set[str] = set()
        for chain in chains:
            for node in chain:  # bottom-up: each node's children are already up to date
                own = self._costs.get(node, 0.0) if node in base else 0.0
                kids = tree.children.get(node, ())
                tree.tree_cost[node] = own + sum(tree.tree_cost.get(child, 0.0) for child in kids)
                touched.add(node)
        return touched
