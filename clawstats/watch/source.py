"""What an agent hands the store: ``Source`` (one served row before joining: key, index row,
transcript), ``AgentScan`` (what changed in one scan) and ``NodeSources`` (a SQLite agent's sources,
read through its nodes and archives' rows)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import msgspec

from clawstats.core.records import IndexRow


def cursor_id(agent_id: str, session_id: str) -> str:
    """A SQLite session's stats id: ``<agentId>/<sessionId>``. Unique in the state dir (an agent
    id is a directory name: no ``/``), and not a file transcript's path
    (``<state dir>/agents/<agentId>/sessions/<name>``, a session id naming no such path); the
    database's path in it cost ~60-120 bytes a session, at 50,000 sessions."""
    return agent_id + "/" + session_id


class Source(msgspec.Struct, frozen=True, gc=False):
    """``gc=False``: strings and an index row (itself untracked), never in a cycle: 64 bytes a
    session, not a slotted dataclass's 80 (it is tracked by the collector)."""

    key: str
    agent_id: str
    row: IndexRow | None
    stats_id: str | None  # transcript path (file layout) or "<agentId>/<sessionId>" (SQLite, cursor_id)
    archived: bool = False
    archived_from: str | None = None


class Node(Source, frozen=True, gc=False):
    """A SQLite session node as its agent keeps it: the row's :class:`Source` (``row`` None: a
    row rejected, not served) and the node's ``updated_at`` (a node that moved is read again).
    One object a session where a tuple beside its ``Source`` cost 64 bytes more."""

    updated_at: int | float = 0  # the row's equal float when it has one (compared by value)


@dataclass(frozen=True, slots=True)
class AgentScan:
    """Since the agent's previous scan: row keys whose :class:`Source` was added, changed or
    removed, transcripts (stats ids) whose statistics changed, appeared or vanished, and
    transcripts whose unchanged statistics were packed (idle since they were written to)."""

    keys: set[str]
    stats: set[str]
    packed: set[str] = field(default_factory=set)


class NodeSources(Mapping[str, Source]):
    """A SQLite agent's sources by key, read from its nodes (a node with a row is its source)
    and its archives' rows (which win a key both name): no map of every node beside ``nodes``
    (~25 bytes a session)."""

    __slots__ = ("_nodes", "_archived")

    def __init__(self, nodes: Mapping[str, Node], archived: Mapping[str, Source]) -> None:
        self._nodes = nodes
        self._archived = archived

    def __getitem__(self, key: str) -> Source:
        found = self._archived.get(key)
        if found is not None:
            return found
        node = self._nodes[key]
        if node.row is None:  # a rejected row: no session
            raise KeyError(key)
        return node

    def __iter__(self) -> Iterator[str]:
        archived = self._archived
        yield from archived
        for key, node in self._nodes.items():
            if node.row is not None and key not in archived:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)
