"""What an agent hands the store: ``Source`` (one served row before joining: key, index row,
transcript), ``AgentScan`` (what changed in one scan, with the sources the store was told of
before), ``NodeSources`` (a SQLite agent's sources, read through its nodes and archives' rows) and
``AgentSources`` (every agent's sources by key, read through the agents' own maps)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

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


#: Row keys whose :class:`Source` was added, changed or removed since the agent's last scan, each
#: with the source the store was told of then (None: none): what the store's joins take out, the
#: agent's ``sources`` holding only the new ones (the joins keep no map of every row's source).
Before = dict[str, Source | None]


def note_before(changed: Before, sources: Mapping[str, Source], keys: Iterable[str]) -> None:
    """Note each of ``keys`` as changed, with its source in ``sources`` (the agent's, before it
    changes them) unless it was noted since the last scan (the store was told of that one)."""
    for key in keys:
        if key not in changed:
            changed[key] = sources.get(key)


@dataclass(frozen=True, slots=True)
class AgentScan:
    """Since the agent's previous scan: row keys whose :class:`Source` was added, changed or
    removed (:data:`Before`), transcripts (stats ids) whose statistics changed, appeared or
    vanished, and transcripts whose unchanged statistics were packed (idle since they were
    written to)."""

    keys: Before
    stats: set[str]
    packed: set[str] = field(default_factory=set)


class NodeSources(Mapping[str, Source]):
    """A SQLite agent's sources by key, read from its nodes (a node with a row is its source)
    and its archives' rows (which win a key both name): no map of every node beside ``nodes``
    (~25 bytes a session)."""

    __slots__ = ("nodes", "archived")

    def __init__(self, nodes: Mapping[str, Node], archived: Mapping[str, Source]) -> None:
        self.nodes = nodes
        self.archived = archived

    def __getitem__(self, key: str) -> Source:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: str, default: Source | None = None) -> Source | None:  # type: ignore[override]
        found = self.archived.get(key)
        if found is not None:
            return found
        node = self.nodes.get(key)
        if node is None or node.row is None:  # (a rejected row: no session)
            return default
        return node

    def __iter__(self) -> Iterator[str]:
        archived = self.archived
        yield from archived
        for key, node in self.nodes.items():
            if node.row is not None and key not in archived:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)


class HasSources(Protocol):
    """An agent, as the joins read it: its sources by row key."""

    @property
    def sources(self) -> Mapping[str, Source]: ...


class AgentSources(Mapping[str, Source]):
    """Every agent's sources by row key, read from the agents' own maps (no second map of every
    row: ~37 bytes a row). A key is looked up first in the agent it names (``agent:<id>:...``, as
    OpenClaw names every key), then in the others in order (the first that has it)."""

    __slots__ = ("_agents",)

    def __init__(self, agents: Mapping[str, HasSources]) -> None:
        self._agents = agents  # (the store's own dict: agents added later are read too)

    def get(self, key: str, default: Source | None = None) -> Source | None:  # type: ignore[override]
        agents = self._agents
        named: HasSources | None = None
        if key.startswith("agent:"):
            end = key.find(":", 6)
            named = agents.get(key[6:end]) if end > 0 else None
            if named is not None:
                found = named.sources.get(key)
                if found is not None:
                    return found
        for agent in agents.values():
            if agent is not named:
                found = agent.sources.get(key)
                if found is not None:
                    return found
        return default

    def __getitem__(self, key: str) -> Source:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[str]:
        if len(self._agents) == 1:
            yield from next(iter(self._agents.values())).sources
            return
        yield from {key: None for agent in self._agents.values() for key in agent.sources}

    def __len__(self) -> int:
        return sum(1 for _ in self)


class PlanSources(Mapping[str, Source]):
    """A file agent's sources at one plan, by key: a row reading its usual transcript (its
    ``sessionFile``, else ``<sessions dir>/<sessionId>.jsonl``) is made when asked from the rows
    of that plan (``rows``: never changed, a reload is a new dict); the others (no transcript, a
    transcript elsewhere or by another name, orphans, archives) are kept (``odd``, which wins a
    key both name). No map of every row's source, nor a ``Source`` object per row (~90 bytes a
    row) beside the index rows."""

    __slots__ = ("rows", "odd", "agent_id", "prefix")

    def __init__(self, rows: Mapping[str, IndexRow], odd: dict[str, Source], agent_id: str, prefix: str) -> None:
        self.rows = rows
        self.odd = odd
        self.agent_id = agent_id
        self.prefix = prefix  # the sessions dir and a separator

    def usual(self, row: IndexRow) -> str | None:
        """The transcript a row usually reads (None: it names none)."""
        if row.sessionFile:
            return row.sessionFile
        return self.prefix + row.sessionId + ".jsonl" if row.sessionId else None

    def put(self, src: Source) -> None:
        """Plan ``src`` (its row, if any, is the one ``rows`` holds for its key)."""
        row = src.row
        if row is not None and src.stats_id is not None and not src.archived and src.archived_from is None:
            if self.rows.get(src.key) is row and src.stats_id == self.usual(row):
                self.odd.pop(src.key, None)
                return
        self.odd[src.key] = src

    def row_of(self, key: str) -> IndexRow | None:
        """The index row of ``key``'s source (None: none, or no such key), no source made."""
        found = self.odd.get(key)
        return found.row if found is not None else self.rows.get(key)

    def paths(self) -> set[str]:
        """Every transcript this plan reads."""
        odd = self.odd
        found = {src.stats_id for src in odd.values() if src.stats_id is not None}
        for key, row in self.rows.items():
            path = self.usual(row) if key not in odd else None
            if path is not None:
                found.add(path)
        return found

    def changed_from(self, old: PlanSources) -> list[str]:
        """The keys whose source differs from ``old``'s (added or gone too). A row reading its
        usual transcript in both is the same source when it is the same row object (an unchanged
        row of a reload is: ``parse_index``), compared whole otherwise: no source made per row."""
        changed: list[str] = []
        old_rows, old_odd, odd, rows = old.rows, old.odd, self.odd, self.rows
        for key, row in rows.items():
            if key in odd or key in old_odd:
                continue  # (below)
            before = old_rows.get(key)
            if before is not row and (before is None or old.get(key) != self.get(key)):
                changed.append(key)
        changed.extend(key for key, src in odd.items() if old.get(key) != src)
        changed.extend(key for key in old_odd if key not in odd and key in rows and old.get(key) != self.get(key))
        changed.extend(key for key in old if key not in self)
        return changed

    def get(self, key: str, default: Source | None = None) -> Source | None:  # type: ignore[override]
        found = self.odd.get(key)
        if found is not None:
            return found
        row = self.rows.get(key)
        if row is None:
            return default
        return Source(key, self.agent_id, row, self.usual(row))

    def __getitem__(self, key: str) -> Source:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return key in self.odd or key in self.rows

    def __iter__(self) -> Iterator[str]:
        yield from self.rows
        rows = self.rows
        yield from (key for key in self.odd if key not in rows)

    def __len__(self) -> int:
        return len(self.rows) + sum(1 for key in self.odd if key not in self.rows)
