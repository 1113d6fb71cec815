"""Finding the state dir, the agents and the config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clawstats.watch.layout import StateDirError, choose_state_dir, discover_agents, resolve_state_dir


def test_resolution_order(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in "abc")
    for d in (a, b, c, tmp_path / "home" / ".openclaw", tmp_path / "home" / ".clawdbot"):
        d.mkdir(parents=True)
    # CLAWSTATS_STATE_DIR is read once, by clawstats.settings, into the setting passed here.
    env = {"CLAWSTATS_STATE_DIR": str(b), "OPENCLAW_STATE_DIR": str(c), "HOME": str(tmp_path / "home")}
    assert resolve_state_dir(str(a), env) == a
    assert resolve_state_dir(str(b), env, "CLAWSTATS_STATE_DIR") == b
    assert resolve_state_dir(None, env) == c
    assert resolve_state_dir(None, {"HOME": str(tmp_path / "home")}) == tmp_path / "home" / ".openclaw"
    (tmp_path / "home" / ".openclaw").rmdir()
    assert resolve_state_dir(None, {"HOME": str(tmp_path / "home")}) == tmp_path / "home" / ".clawdbot"
    with pytest.raises(StateDirError, match="from --state-dir"):
        resolve_state_dir(str(tmp_path / "missing"), env)
    with pytest.raises(StateDirError, match="from CLAWSTATS_STATE_DIR"):
        resolve_state_dir(str(tmp_path / "missing"), env, "CLAWSTATS_STATE_DIR")


def test_session_store_template(tmp_path: Path) -> None:
    for agent in ("alpha", "beta"):
        store = tmp_path / "stores" / agent / "sessions.json"
        store.parent.mkdir(parents=True)
        store.write_text("{}")
    config = {"session": {"store": str(tmp_path / "stores" / "{agentId}" / "sessions.json")}}
    agents = discover_agents(tmp_path, config, None)
    assert [(a.agent_id, a.layout) for a in agents] == [("alpha", "file"), ("beta", "file")]
    assert [a.agent_id for a in discover_agents(tmp_path, config, "beta")] == ["beta"]


def test_sqlite_layout_wins_over_legacy_index(tmp_path: Path) -> None:
    agent = tmp_path / "agents" / "main"
    (agent / "sessions").mkdir(parents=True)
    (agent / "sessions" / "sessions.json").write_text(json.dumps({}))
    (agent / "agent").mkdir()
    (agent / "agent" / "openclaw-agent.sqlite").write_bytes(b"")
    (tmp_path / "agents" / "ops" / "sessions").mkdir(parents=True)
    (tmp_path / "agents" / "ops" / "sessions" / "sessions.json").write_text("{}")
    agents = discover_agents(tmp_path, None, None)
    assert [(a.agent_id, a.layout) for a in agents] == [("main", "sqlite"), ("ops", "file")]


@pytest.mark.parametrize(
    ("dirs", "env", "chosen", "why"),
    [
        ([".openclaw", ".clawdbot"], {}, ".openclaw", "the default"),
        ([".clawdbot", ".moltbot"], {}, ".clawdbot", "legacy dir"),
        ([".moltbot"], {}, ".moltbot", "legacy dir"),  # older releases, as ccusage reads them
        ([".moldbot"], {}, ".moldbot", "legacy dir"),
        ([".openclaw", ".openclaw-work"], {"OPENCLAW_PROFILE": "work"}, ".openclaw-work", "OPENCLAW_PROFILE=work"),
        ([".openclaw", ".openclaw-work"], {"OPENCLAW_PROFILE": "default"}, ".openclaw", "the default"),
        ([".openclaw", "elsewhere"], {"OPENCLAW_STATE_DIR": "~/elsewhere"}, "elsewhere", "OPENCLAW_STATE_DIR"),
    ],
)
def test_state_dir_follows_openclaw(
    tmp_path: Path, dirs: list[str], env: dict[str, str], chosen: str, why: str
) -> None:
    for name in dirs:
        (tmp_path / name).mkdir()
    path, reason = choose_state_dir(None, {"OPENCLAW_HOME": str(tmp_path), **env})
    assert path == tmp_path / chosen and why in reason


def test_profile_without_its_dir_says_so(tmp_path: Path) -> None:
    (tmp_path / ".openclaw").mkdir()
    with pytest.raises(StateDirError, match="OPENCLAW_PROFILE=work"):
        choose_state_dir(None, {"OPENCLAW_HOME": str(tmp_path), "OPENCLAW_PROFILE": "work"})
