"""``Enricher``: the served rows' lineage, tree cost and forecast, kept across scans.

The store (one writer) hands it the rows as built (before enrichment), the keys rebuilt and
removed in one scan and the rows served now; :meth:`Enricher.update` returns only the rows whose
enriched form differs from what is served. An append that moves no lineage (the common case: a
transcript grows, its parent, archive owner and spawned children are what they were) costs the
rebuilt rows and their ancestors: each ancestor's tree cost is summed again from its children. A
leaf row added (a new session, a cron run, a sub-agent that spawned nothing yet) or removed is
patched into the kept tree the same way. Anything else (a parent or spawn link that moved, a row
with children removed, a cycle, a chain deeper than the tree's depth guard) builds the whole
tree again, as :func:`enrich` does. Pure.

The kept tree is sparse (at 50,000 sessions a map with an entry per row is ~2.6 MB): most rows
are plain leaves (no parent, no children), and what they would hold is their row's own: a parent
is kept only when there is one, a root only when it is not the key itself, a tree cost only for
a key with children (a leaf's is its own cost, read from its row), a shape only when it is not
``_PLAIN`` (the caller names the rows new in each update, so no map of every row tells them).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import msgspec

from clawstats.core.attribution import MAX_DEPTH, Tree, annotated, build_tree, cron_job_key, parent_of, root_of
from clawstats.core.enrich import ForecastMemo, Timeline, foresee, links_of
from clawstats.core.figures import money
from clawstats.core.forecast import CompactionConfig
from clawstats.core.session import SessionRow

#: What a row contributes to the tree's shape: its own parent, the key it is an archive of, the
#: children its transcript spawned.
Shape = tuple[str | None, str | None, tuple[str, ...]]


#: The shape of most rows (no parent, no archive owner, spawned nothing): one tuple for all of
#: them, not 64 bytes a row.
_PLAIN: Shape = (None, None, ())


def _shape(row: SessionRow, view: Timeline | None) -> Shape:
    spawned = tuple(view.spawned) if view is not None else ()
    if row.parent_key is None and row.archived_from is None and not spawned:
        return _PLAIN
    return (row.parent_key, row.archived_from, spawned)


class Enricher:
    """Lineage and forecast state of the served rows (see the module docstring)."""

    def __init__(self) -> None:
        self.memo: ForecastMemo = {}
        self.tree: Tree | None = None
        self.full_passes = 0  # whole-tree builds (a test pins that an append needs none)
        self._shapes: dict[str, Shape] = {}  # the rows' shapes but ``_PLAIN`` (most rows)
        # the own costs (None counts 0) the tree was summed with, of the rows with a parent or
        # children: a plain row's chain is itself, nothing to sum again
        self._costs: dict[str, float] = {}
        self._links: dict[str, str] = {}  # child -> parent from the transcripts' spawn results

    def update(
        self,
        base: Mapping[str, SessionRow],
        views: Mapping[str, Timeline],
        rebuilt: Iterable[str],
        removed: Iterable[str],
        served: Mapping[str, SessionRow],
        compaction: CompactionConfig,
        *,
        added: Collection[str] | None = None,
        release: dict[str, SessionRow] | None = None,
    ) -> dict[str, SessionRow]:
        """The rows whose enriched form differs from ``served``. ``added``: the rebuilt keys that
        had no row before (None: not told, the whole tree is built again). ``release``: ``base`` itself, a
        dict the caller needs no more (a cold start's rows as built): each built row is dropped
        from it once enriched, so its enriched copy takes the memory it held (at 50,000 rows, the
        built rows freed at once after the publish left ~16 MB of empty pools the process kept)."""
        gone = set(removed)
        fresh = {key for key in rebuilt if key in base}
        for key in gone:
            self.memo.pop(key, None)
        moved = self._follow(base, views, fresh, gone, served, added)
        if moved is None:
            self.full_passes += 1
            rows = list(base.values())
            self._links = links_of(rows, views)
            self.tree = _sparse(build_tree(rows, self._links))
            del rows  # (no reference to every built row left here: see ``release``)
            shapes = ((key, _shape(row, views.get(key))) for key, row in base.items())
            self._shapes = {key: shape for key, shape in shapes if shape is not _PLAIN}
            linked = self.tree.parents.keys() | self.tree.children.keys()
            self._costs = {key: row.total_cost or 0.0 for key, row in base.items() if key in linked}
            moved = set(base)
        tree = self.tree
        assert tree is not None
        out: dict[str, SessionRow] = {}
        memo = self.memo
        for key in fresh:  # one row at a time: no list of every row annotated, alive at once
            out[key] = foresee(annotated(base[key], tree), views.get(key), compaction, memo)
            if release is not None:
                del release[key]
        parents, roots, costs = tree.parents, tree.roots, tree.tree_cost
        for key in moved:
            built = base.get(key)
            now = served.get(key)
            if key in fresh or built is None or now is None:
                continue
            lineage = (parents.get(key), roots.get(key, key), costs.get(key, built.total_cost or 0.0))
            if (now.parent_key, now.root_key, now.tree_cost) != lineage:
                out[key] = msgspec.structs.replace(
                    now, parent_key=lineage[0], root_key=lineage[1], tree_cost=lineage[2]
                )
        return out

    def _follow(
        self,
        base: Mapping[str, SessionRow],
        views: Mapping[str, Timeline],
        fresh: set[str],
        gone: set[str],
        served: Mapping[str, SessionRow],
        added: Collection[str] | None,
    ) -> set[str] | None:
        """Update the kept tree in place: leaf rows added or removed, and the tree cost of each
        changed row's chain of ancestors. Returns the row keys whose lineage fields may have
        moved, or None when the whole tree must be built again (the kept one may be half-updated
        then: the full pass replaces it)."""
        tree = self.tree
        new = self._leaves(base, views, fresh, gone, served, added) if added is not None else None
        if tree is None or new is None:
            return None
        starts: list[str] = []
        for key in gone:
            up = tree.parents.pop(key, None)
            tree.roots.pop(key, None)
            tree.tree_cost.pop(key, None)
            self._shapes.pop(key, None)
            self._costs.pop(key, None)
            if up is not None:
                kids = tree.children[up]
                kids.remove(key)
                if not kids:
                    del tree.children[up]
                starts.append(up)
        for key, shape in new.items():
            up = parent_of(base[key], self._links)
            if up is not None:
                tree.parents[key] = up
                tree.children.setdefault(up, []).append(key)
            if shape is not _PLAIN:
                self._shapes[key] = shape
        for key in new:
            root = root_of(key, tree.parents)
            if root != key:
                tree.roots[key] = root
        for key in fresh:
            if key in tree.parents or key in tree.children:
                cost = base[key].total_cost or 0.0
                if key in new or self._costs.get(key) != cost:
                    self._costs[key] = cost
                    starts.append(key)
            else:  # a plain row (no parent, no children): its tree cost is its own, nothing kept
                # (an own cost kept from before would be stale once it has children again)
                self._costs.pop(key, None)
        return self._resum(tree, base, served, starts)

    def _leaves(
        self,
        base: Mapping[str, SessionRow],
        views: Mapping[str, Timeline],
        fresh: set[str],
        gone: set[str],
        served: Mapping[str, SessionRow],
        added: Collection[str],
    ) -> dict[str, Shape] | None:
        """The rows new in this scan (with their shapes) when every change is one the kept tree
        can take in place; None otherwise."""
        tree, links, shapes = self.tree, self._links, self._shapes
        if tree is None:
            return None
        new = {key: _shape(base[key], views.get(key)) for key in fresh if key in added}
        for key in fresh:
            if key not in new and shapes.get(key, _PLAIN) != _shape(base[key], views.get(key)):
                return None  # its parent, archive owner or spawned children moved
        for key in gone:
            if key in tree.children or key in links:
                return None  # not a plain leaf: a parent, or a spawned child whose key stays in the tree
        for key, shape in new.items():
            if shape[2] or key in tree.parents or key in tree.children:
                return None  # it spawned children, or its key was already in the tree (a placeholder)
            up = parent_of(base[key], links)
            if up is not None and cron_job_key(up) is not None and (up not in tree.parents or up in gone):
                if up not in served or up in added:  # (a row before this update: in the tree)
                    # a cron run's placeholder the full pass would add (its row gone in this update
                    # too: it leaves the tree below, the child would hang under no job)
                    return None
        return new

    def _resum(
        self, tree: Tree, base: Mapping[str, SessionRow], served: Mapping[str, SessionRow], starts: list[str]
    ) -> set[str] | None:
        """Sum the tree cost again along each start's chain of ancestors, bottom-up. A row's own
        cost is its served row's (enrichment leaves ``total_cost`` as built), else its built row's."""

        def own(node: str) -> float:
            row = served.get(node)
            if row is None:
                row = base.get(node)
            return (row.total_cost or 0.0) if row is not None else 0.0

        chains: list[list[str]] = []
        for start in starts:
            chain: list[str] = []
            node: str | None = start
            while node is not None:
                if node in chain or len(chain) >= MAX_DEPTH:
                    return None  # a cycle or a chain past the guard: the full pass's rules apply
                chain.append(node)
                node = tree.parents.get(node)
            chains.append(chain)
        touched: set[str] = set()
        costs = tree.tree_cost
        for chain in chains:
            for node in chain:  # each node's children are already up to date
                kids = tree.children.get(node)
                if kids:
                    # a child without children of its own (most) has its own cost as tree cost
                    # rounded as the whole pass rounds a sum (money): the same figure either way
                    costs[node] = money(own(node) + sum(costs[kid] if kid in costs else own(kid) for kid in kids))
                else:
                    costs.pop(node, None)  # a leaf: its own cost, read from its row
                touched.add(node)
        return touched


def _sparse(tree: Tree) -> Tree:
    """The kept form of a whole tree: no entry a row's own fields give (see the module docstring)."""
    parents: dict[str, str | None] = {key: up for key, up in tree.parents.items() if up is not None}
    roots = {key: root for key, root in tree.roots.items() if root != key}
    costs = {key: cost for key, cost in tree.tree_cost.items() if key in tree.children}
    return Tree(parents, tree.children, roots, costs)
