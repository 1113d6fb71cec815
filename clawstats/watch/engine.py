"""Assembling a :class:`StatsStore` from :class:`Settings`: state dir, config, agents, cache."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from clawstats.core.pricing import genai_price, genai_prices_id
from clawstats.settings import Settings
from clawstats.watch.answers import Answer, AnswerFile, Inputs
from clawstats.watch.cache import IndexCache, default_cache_path
from clawstats.watch.discovery import AgentDiscovery
from clawstats.watch.file_agent import FileAgent
from clawstats.watch.layout import (
    AgentSource,
    StateDirError,
    choose_state_dir,
    config_path,
    discover_agents,
    load_catalog,
    load_config,
)
from clawstats.watch.store import StatsStore

log = logging.getLogger("clawstats")


def open_store(settings: Settings, env: Mapping[str, str], workers: int = 1, follow: bool = False) -> StatsStore:
    """Raises :class:`clawstats.watch.layout.StateDirError` when there is no state dir.

    ``follow`` (a server): a state dir that does not exist yet is waited for, and agents that
    appear later are picked up (:class:`AgentDiscovery`, run by the poller before full scans).
    """
    state_dir, why = choose_state_dir(settings.state_dir, env, settings.source("state_dir"), must_exist=not follow)
    log.info("state dir %s (%s)", state_dir, why)
    config, config_error = load_config(state_dir, env)
    agents = discover_agents(state_dir, config, settings.agent) if state_dir.is_dir() else []
    catalog = load_catalog(state_dir, config, [a.agent_id for a in agents], genai_price, genai_prices_id())
    cache = None
    if not settings.no_cache:
        # The identity names what the cached states were computed with: the prices of the per-call
        # costs, and --max-line-bytes (a smaller one skipped lines a plain run must count).
        identity = f"{catalog.identity()}|max_line_bytes={settings.max_line_bytes}"
        cache = IndexCache(default_cache_path(settings.cache_path_dir, state_dir), identity=identity)
    store = StatsStore(state_dir, agents, catalog, cache, settings.max_line_bytes, workers)
    if cache is not None:
        cache.health = store.health
        if cache.failure is not None:  # one warning, with the reason the cache gave
            store.health.set_condition(str(cache.path), cache.failure)
    for path in (state_dir, state_dir / "agents"):
        try:
            os.listdir(path)
        except FileNotFoundError:
            pass  # no agents yet: not an error of reading
        except OSError as exc:  # e.g. another user's dir (mode 700): degraded, not a traceback
            store.health.set_condition(str(path), f"cannot list: {exc.strerror or exc}")
    if config_error:
        store.health.set_condition(str(state_dir / "openclaw.json"), config_error)
    if follow:
        discovery = AgentDiscovery(store, env, settings.agent)
        store.discovery = discovery.refresh
        discovery.refresh()
    return store


def describe_layouts(store: StatsStore) -> str:
    layouts = store.health.layouts
    if not store.state_dir.is_dir():
        return "waiting for state dir"
    return ", ".join(f"{agent}={layout}" for agent, layout in sorted(layouts.items())) or "no agents yet"


class Answers:
    """A one-shot command's last answer for these settings (:mod:`clawstats.watch.answers`):
    where it is kept, and what a read must match to reuse it."""

    def __init__(self, settings: Settings, env: Mapping[str, str], state_dir: Path) -> None:
        self.settings, self.env, self.state_dir = settings, env, state_dir
        index = default_cache_path(settings.cache_path_dir, state_dir)
        key = (str(state_dir.resolve()), settings.agent, settings.max_line_bytes, str(config_path(state_dir, env)))
        self.file = AnswerFile.beside(index, (*key, genai_prices_id()))

    @classmethod
    def of(cls, settings: Settings, env: Mapping[str, str]) -> Answers | None:
        """None without a state dir (the full read then says why)."""
        try:
            state_dir, _ = choose_state_dir(settings.state_dir, env, settings.source("state_dir"))
        except StateDirError:
            return None
        return cls(settings, env, state_dir)

    def _agents(self) -> list[AgentSource]:
        try:
            config, _ = load_config(self.state_dir, self.env)
        except StateDirError:
            return []
        return discover_agents(self.state_dir, config, self.settings.agent) if self.state_dir.is_dir() else []

    def load(self) -> Answer | None:
        return self.file.load(self._agents)

    def save(self, answer: Answer, store: StatsStore, started_ns: int) -> bool:
        agents = [agent.source for agent in store.agents.values()]
        named = [
            row.sessionFile
            for agent in store.agents.values()
            if isinstance(agent, FileAgent)
            for row in agent.index.rows.values()
            if row.sessionFile and os.path.isabs(row.sessionFile)
        ]
        config = config_path(self.state_dir, self.env)
        inputs = Inputs.of(self.state_dir, config, agents, store.all_paths(), named)
        return self.file.save(answer, inputs, started_ns)
