"""The store's agent set: one reader per agent by its layout, and the cold read over all of them.

``make_agent`` builds a :class:`FileAgent` or a :class:`SqliteAgent` for an
:class:`AgentSource`; ``read_cold`` asks every agent to ``prepare()`` and reads the files none
has read yet in one batch (worker processes when ``workers`` > 1), handing each back to its agent.
"""

from __future__ import annotations

from clawstats.core.catalog import Catalog
from clawstats.core.health import HealthLog
from clawstats.core.usage import Pricer
from clawstats.watch.cache import IndexCache
from clawstats.watch.cold import ColdRead, PriceOf, read_in_workers
from clawstats.watch.file_agent import FileAgent
from clawstats.watch.layout import AgentSource
from clawstats.watch.sqlite_store import SqliteAgent
from clawstats.watch.tail import Tail

Agent = FileAgent | SqliteAgent


def make_agent(
    agent: AgentSource,
    health: HealthLog,
    cache: IndexCache | None,
    restored: dict[str, Tail],
    price: Pricer,
    max_line_bytes: int,
    row_grace_s: float,
    workers: int = 1,
) -> Agent:
    """The reader of one agent, by its layout (``workers`` > 1: a SQLite agent's first read of
    many events fans out to worker processes; files are read in :func:`read_cold`)."""
    if agent.layout == "sqlite":
        return SqliteAgent(agent, health, restored, price, max_line_bytes, workers)
    files = FileAgent(agent, health, cache, restored, max_line_bytes, price)
    files.row_grace_s = row_grace_s
    return files


def read_cold(
    agents: dict[str, Agent],
    catalog: Catalog,
    workers: int,
    max_line_bytes: int,
    health: HealthLog,
    hint: set[str] | None = None,
) -> None:
    """Every agent plans (``prepare``, given the scan's ``hint``); the files never read are read
    in one batch over all agents.

    On a store read from nothing, the transcripts the directories list are all read whole: that
    read starts before the plans (a third of a second at 50,000 sessions, on a core the workers
    would leave idle); the plans' other files (a sessionFile elsewhere) follow in a second batch."""
    owner: dict[str, str] = {}
    for agent_id, agent in agents.items():
        if isinstance(agent, FileAgent) and workers > 1:
            owner.update(dict.fromkeys(agent.listed(), agent_id))
    price = {agent_id: catalog.pricer(agent_id) for agent_id in agents}
    price_of: PriceOf = lambda path: price[owner[path]]  # noqa: E731
    with ColdRead(list(owner), workers, max_line_bytes, price_of) as early:
        cold = {agent_id: agent.prepare(hint) for agent_id, agent in agents.items()}
        read = early.collect(health)
    late = {p: agent_id for agent_id, paths in cold.items() for p in paths if p not in early.paths}
    owner.update(late)
    read.extend(read_in_workers(list(late), workers, max_line_bytes, health, price_of))
    for tail in read:
        agent = agents[owner[tail.path]]
        assert isinstance(agent, FileAgent)
        agent.adopt_read(tail)
