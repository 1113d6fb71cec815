"""Who spent it: sub-agent trees, cron jobs and channels over the served rows.

Pure functions over rows already built. Lineage comes from what the store says, in this order:
the row's ``spawnedBy`` / ``parentSessionKey``; a parent transcript's ``sessions_spawn`` result
(``details.childSessionKey``), which outlives the child's row when OpenClaw cleans a sub-agent
up; an archived transcript belongs to the key in ``archivedFrom``. A tree's cost is every
transcript under its root counted once: the key's own transcript, its archives, and the same
for every descendant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

from clawstats.core.figures import money
from clawstats.core.session import SessionRow

#: The wire names of the attribution groupings (``/api/usage?by=``).
ATTRIBUTION_BY = ("parent", "cron", "channel", "kind")
NO_GROUP = "(none)"
MAX_DEPTH = 64  # OpenClaw caps spawn depth far lower; this only guards against cycles


def cron_job_of(key: str) -> str | None:
    """The job id of a cron session key: ``cron:<job>[:...]`` or ``agent:<id>:cron:<job>[:run:<id>]``."""
    parts = key.split(":")
    rest = parts[2:] if len(parts) >= 3 and parts[0] == "agent" else parts
    if len(rest) >= 2 and rest[0] == "cron" and rest[1]:
        return rest[1]
    return None


def channel_of(key: str, row_channel: str | None) -> str | None:
    """The row's channel, else the one a channel-scoped key names (``agent:<id>:<channel>:group:<id>``)."""
    if row_channel:
        return row_channel
    parts = key.split(":")
    rest = parts[2:] if len(parts) >= 3 and parts[0] == "agent" else []
    if len(rest) >= 3 and rest[1] in ("group", "channel", "direct", "dm") and rest[0] not in ("cron", "subagent"):
        return rest[0]
    return None


def cron_job_key(key: str) -> str | None:
    """The job's own key for a per-run cron key (``agent:<id>:cron:<job>:run:<run>``), else None."""
    parts = key.split(":")
    if len(parts) >= 6 and parts[0] == "agent" and parts[2] == "cron" and parts[4] == "run":
        return ":".join(parts[:4])
    return None


def spawn_links(spawned: Iterable[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """``{child key: parent key}`` from ``(parent key, children its transcripts spawned)``."""
    links: dict[str, str] = {}
    for parent, children in spawned:
        for child in children:
            if child != parent:
                links.setdefault(child, parent)
    return links


def parent_of(row: SessionRow, links: Mapping[str, str]) -> str | None:
    """The parent key of a row: an archive (or a transcript no row points at) hangs under its key."""
    if row.archived_from:
        return row.archived_from
    return row.parent_key or links.get(row.key) or cron_job_key(row.key)


def root_of(key: str, parents: Mapping[str, str | None]) -> str:
    """A row's top-level ancestor (itself when it has none); a cycle stops at the repeat."""
    seen = {key}
    node = key
    for _ in range(MAX_DEPTH):
        up = parents.get(node)
        if up is None or up in seen:
            break
        seen.add(up)
        node = up
    return node


def _roots(rows: Sequence[SessionRow], parents: Mapping[str, str | None]) -> dict[str, str]:
    return {row.key: root_of(row.key, parents) for row in rows}


class Tree(msgspec.Struct, frozen=True):
    """Lineage over one snapshot's rows."""

    parents: dict[str, str | None]  # row key -> parent key (may name a key without a row)
    children: dict[str, list[str]]  # key -> child keys (archives of the key and cleaned-up children included)
    roots: dict[str, str]  # row key -> top-level key
    tree_cost: dict[str, float]  # key -> own cost + every descendant's, archives included


def build_tree(rows: Sequence[SessionRow], links: Mapping[str, str]) -> Tree:
    """Parents, children, roots and tree costs of every row."""
    parents: dict[str, str | None] = {row.key: parent_of(row, links) for row in rows}
    for child, spawner in links.items():
        parents.setdefault(child, spawner)  # a cleaned-up child: no row, but its archives hang under it
    for up in list(parents.values()):
        job = cron_job_key(up) if up is not None else None
        if up is not None and job is not None:
            parents.setdefault(up, job)  # a cron run with no row of its own belongs to its job
    children: dict[str, list[str]] = {}
    for key, up in parents.items():
        if up is not None:
            children.setdefault(up, []).append(key)
    roots = _roots(rows, parents)
    # Each row's cost goes to itself and every ancestor once (summed in row order, like the totals);
    # a cleaned-up child with no row of its own gets a tree cost too (its archives').
    tree_cost: dict[str, float] = {}
    for row in rows:
        node: str | None = row.key
        seen: set[str] = set()
        while node is not None and node not in seen and len(seen) < MAX_DEPTH:
            seen.add(node)
            own = row.total_cost or 0.0  # unknown (None): a lower bound
            before = tree_cost.get(node)
            # a leaf's tree cost is its own cost: that float object (0.0 + x is x for x >= 0), not a copy
            tree_cost[node] = own if before is None else before + own
            node = parents.get(node)
    for node in children:  # a sum: published as money is (its float noise depended on row order)
        cost = tree_cost.get(node)
        if cost is not None:
            tree_cost[node] = money(cost)
    return Tree(parents, children, roots, tree_cost)


def group_name(row: SessionRow, by: str, tree: Tree, by_key: Mapping[str, SessionRow]) -> str:
    """The ``by=parent|cron|channel|kind`` group a row's transcript counts in.

    A row with no cron job or channel of its own (a sub-agent a cron run spawned, a cleaned-up
    child's archive) counts for its top-level session's.
    """
    root = tree.roots.get(row.key, row.key)
    if by == "parent":
        return root
    top = by_key.get(root)
    if by == "cron":
        return row.cron_job or cron_job_of(root) or NO_GROUP
    if by == "channel":
        return row.channel or (top.channel if top is not None else None) or NO_GROUP
    if by == "kind":  # direct, group, channel, subagent, cron, hook, other: the key's shape
        return row.kind
    raise ValueError(f"by must be one of {', '.join(ATTRIBUTION_BY)}")


def annotate(rows: Sequence[SessionRow], tree: Tree) -> list[SessionRow]:
    """Rows with ``parentKey``, ``treeCost``, ``cronJob`` and the key-derived ``channel`` filled in."""
    return [annotated(row, tree) for row in rows]


def annotated(row: SessionRow, tree: Tree) -> SessionRow:
    """One row of :func:`annotate`."""
    lineage_key = row.archived_from or row.key
    return msgspec.structs.replace(
        row,
        parent_key=tree.parents.get(row.key),
        # (a whole tree has every row's root and tree cost; the enricher's kept tree only those a
        # row's own fields do not give: itself, its own cost)
        root_key=tree.roots.get(row.key, row.key),
        tree_cost=tree.tree_cost.get(row.key, row.total_cost or 0.0),
        cron_job=cron_job_of(lineage_key),
        channel=channel_of(lineage_key, row.channel),
    )
