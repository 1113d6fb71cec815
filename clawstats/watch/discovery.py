"""``AgentDiscovery``: follows the store as it comes into being, for a long-running server.

OpenClaw creates an agent's store when that agent's first turn runs, the state dir when the
gateway first starts, and agents can be added to a running gateway's config. Before every full
scan (every ``poll_interval_s``) the poller calls :meth:`AgentDiscovery.refresh`: one listing of
``agents/`` and a few stats, so a new agent's sessions show within one poll interval of their
first write. While the state dir does not exist, health says so (``waiting for state dir``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clawstats.core.pricing import genai_price, genai_prices_id
from clawstats.watch.layout import config_path, discover_agents, load_catalog, load_config
from clawstats.watch.store import StatsStore

WAITING = "waiting for state dir (it does not exist yet; OpenClaw creates it on its first start)"


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class AgentDiscovery:
    def __init__(self, store: StatsStore, env: Mapping[str, str], agent: str | None) -> None:
        self.store = store
        self.env = dict(env)
        self.agent = agent
        self.config_path = config_path(store.state_dir, env)
        self.config_key = _stat_key(self.config_path)
        self.models_keys: dict[str, tuple[int, int, int] | None] = {}
        self.config: dict[str, Any] | None = None
        self.loaded = False

    def refresh(self) -> bool:
        """Add agents (and layout upgrades) found since the last call; reload the catalog if needed.
        True when something changed (the next scan must then be a full one)."""
        store, state_dir = self.store, self.store.state_dir
        if not state_dir.is_dir():
            store.health.set_condition(str(state_dir), WAITING)
            return False
        if store.health.conditions.get(str(state_dir)) == WAITING:
            store.health.clear_condition(str(state_dir))
        config_key = _stat_key(self.config_path)
        if config_key != self.config_key or not self.loaded:  # parsed again only when it changed
            self.config, config_error = load_config(state_dir, self.env)
            self.loaded = True
            if config_error:
                store.health.set_condition(str(self.config_path), config_error)
            else:
                store.health.clear_condition(str(self.config_path))
        config = self.config
        known = dict(store.health.layouts)
        added = False
        for source in discover_agents(state_dir, config, self.agent):
            if source.agent_id not in known or (known[source.agent_id] == "file" and source.layout == "sqlite"):
                store.add_agent(source)
                added = True
        agent_ids = sorted(store.health.layouts)
        models_keys = {a: _stat_key(state_dir / "agents" / a / "agent" / "models.json") for a in agent_ids}
        reload = config_key != self.config_key or models_keys != self.models_keys
        if added or reload:
            store.set_catalog(load_catalog(state_dir, config, agent_ids, genai_price, genai_prices_id()))
        self.config_key, self.models_keys = config_key, models_keys
        return added or reload
