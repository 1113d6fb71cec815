"""Where the data is: the state dir, its agents and their layout, and the config files.

State dir: ``--state-dir`` > ``CLAWSTATS_STATE_DIR`` > ``OPENCLAW_STATE_DIR`` > ``~/.openclaw`` >
legacy ``~/.clawdbot`` (home = ``OPENCLAW_HOME`` > ``HOME``). Per agent the *layout* is
``sqlite`` when ``agents/<id>/agent/openclaw-agent.sqlite`` exists (OpenClaw >= 2026.8; a
leftover ``sessions.json`` is then a frozen legacy import input) and ``file`` otherwise.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import json5

from clawstats.core.catalog import Catalog, PriceFallback, catalog_from_config

SQLITE_NAME = "openclaw-agent.sqlite"


class StateDirError(Exception):
    """No usable state dir; the message is one sentence for stderr."""


@dataclass(frozen=True, slots=True)
class AgentSource:
    agent_id: str
    layout: str  # "file" | "sqlite"
    store: str  # sessions.json path, or the SQLite database path
    sessions_dir: str  # where transcripts live (file layout)


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("OPENCLAW_HOME") or env.get("HOME") or env.get("USERPROFILE")
    return Path(home).expanduser() if home else Path.home()


def resolve_state_dir(flag: str | None, env: Mapping[str, str]) -> Path:
    """The state dir to read, or :class:`StateDirError` naming what was tried."""
    for name, value in (
        ("--state-dir", flag),
        ("CLAWSTATS_STATE_DIR", env.get("CLAWSTATS_STATE_DIR")),
        ("OPENCLAW_STATE_DIR", env.get("OPENCLAW_STATE_DIR")),
    ):
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise StateDirError(
                    f'state dir "{path}" (from {name}) does not exist or is not a directory '
                    "(set --state-dir or CLAWSTATS_STATE_DIR to an OpenClaw state dir)"
                )
            return path
    home = _home(env)
    tried = [home / ".openclaw", home / ".clawdbot"]
    for path in tried:
        if path.is_dir():
            return path
    names = ", ".join(f'"{p}"' for p in tried)
    raise StateDirError(
        f"no OpenClaw state dir found (tried {names}); "
        "set --state-dir or CLAWSTATS_STATE_DIR (or OPENCLAW_STATE_DIR) to one"
    )


def load_config(state_dir: Path, env: Mapping[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    """(``openclaw.json`` as a dict, or None; an error sentence when it exists but is unusable)."""
    path = Path(env.get("OPENCLAW_CONFIG_PATH") or state_dir / "openclaw.json").expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read {path}: {exc}"
    try:
        doc = json5.loads(text)
    except ValueError as exc:
        return None, f"cannot parse {path} as JSON5: {exc}"
    return (doc if isinstance(doc, dict) else None), None


def _store_template(config: Mapping[str, Any] | None) -> str | None:
    session = config.get("session") if isinstance(config, Mapping) else None
    store = session.get("store") if isinstance(session, Mapping) else None
    return store if isinstance(store, str) and store.strip() else None


def discover_agents(state_dir: Path, config: Mapping[str, Any] | None, agent: str | None) -> list[AgentSource]:
    """Every agent with a session store, sorted by id; ``agent`` filters to one."""
    found: dict[str, AgentSource] = {}
    template = _store_template(config)
    if template is not None:
        expanded = os.path.expanduser(template)
        if not os.path.isabs(expanded):
            expanded = str(state_dir / expanded)
        if "{agentId}" in expanded:
            prefix, _, suffix = expanded.partition("{agentId}")
            for match in sorted(glob.glob(glob.escape(prefix) + "*" + glob.escape(suffix))):
                agent_id = match[len(prefix) : len(match) - len(suffix)]
                if agent_id and "/" not in agent_id:
                    found[agent_id] = AgentSource(agent_id, "file", match, os.path.dirname(match))
        elif os.path.exists(expanded):
            found["main"] = AgentSource("main", "file", expanded, os.path.dirname(expanded))
    agents_dir = state_dir / "agents"
    if agents_dir.is_dir():
        for entry in sorted(agents_dir.iterdir()):
            sessions = entry / "sessions"
            database = entry / "agent" / SQLITE_NAME
            if database.is_file():
                found[entry.name] = AgentSource(entry.name, "sqlite", str(database), str(sessions))
            elif entry.name not in found and (sessions / "sessions.json").is_file():
                found[entry.name] = AgentSource(entry.name, "file", str(sessions / "sessions.json"), str(sessions))
            elif entry.name not in found and sessions.is_dir():
                # transcripts but no index yet: still counted (rows come from transcripts)
                found[entry.name] = AgentSource(entry.name, "file", str(sessions / "sessions.json"), str(sessions))
    agents = [found[name] for name in sorted(found)]
    return [a for a in agents if agent is None or a.agent_id == agent]


def load_catalog(
    state_dir: Path,
    config: Mapping[str, Any] | None,
    agent_ids: list[str],
    fallback_price: PriceFallback | None,
    fallback_id: str = "",
) -> Catalog:
    """Catalog from the config and each agent's ``agent/models.json`` (when readable)."""
    agent_models: dict[str, Any] = {}
    for agent_id in agent_ids:
        path = state_dir / "agents" / agent_id / "agent" / "models.json"
        try:
            agent_models[agent_id] = json5.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
    return catalog_from_config(config, agent_models, fallback_price, fallback_id)
