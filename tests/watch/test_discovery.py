"""Agents and the state dir appearing after start-up (OpenClaw creates an agent's store at its first turn)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import httpx

from clawstats.settings import Settings
from clawstats.watch.discovery import WAITING
from clawstats.watch.engine import open_store
from clawstats.watch.store import StatsStore
from tests.conftest import OPS_TRANSCRIPT, REAL_SQLITE, SMALL_STATE
from tests.servers import start_server, stop_server


def _follow(state_dir: Path) -> StatsStore:
    store = open_store(Settings(state_dir=str(state_dir), no_cache=True), {}, follow=True)
    assert store.discovery is not None
    return store


def _full_scan(store: StatsStore) -> set[str]:
    assert store.discovery is not None
    store.discovery()  # what the poller does before every full scan
    return {row.agent_id for row in store.scan().rows}


def test_state_dir_created_after_start_then_agents_of_both_layouts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = _follow(state)
    snap = store.scan()
    assert snap.rows == () and snap.health.conditions == {str(state): WAITING}
    shutil.copytree(SMALL_STATE / "agents" / "ops", state / "agents" / "ops")  # a file-store agent
    assert _full_scan(store) == {"ops"}
    assert store.snapshot is not None and store.snapshot.health.conditions == {}
    main_sqlite = state / "agents" / "main" / "agent"
    shutil.copytree(REAL_SQLITE / "state" / "agents" / "main" / "agent", main_sqlite)  # a SQLite agent, later
    assert _full_scan(store) == {"ops", "main"}
    assert store.health.layouts == {"ops": "file", "main": "sqlite"}


def test_agent_added_to_a_running_store(small_state: Path) -> None:
    shutil.move(small_state / "agents" / "ops", small_state.parent / "ops-later")
    store = _follow(small_state)
    assert _full_scan(store) == {"main"}
    shutil.move(small_state.parent / "ops-later", small_state / "agents" / "ops")
    assert _full_scan(store) == {"main", "ops"}
    before = len(store.scan().rows)
    assert _full_scan(store) == {"main", "ops"} and len(store.scan().rows) == before  # added once


def test_one_shot_commands_still_refuse_a_missing_state_dir(tmp_path: Path) -> None:
    from clawstats.cli import main

    assert main(["sessions", "--state-dir", str(tmp_path / "nope"), "--no-cache"]) == 2


def test_serve_before_the_state_dir_exists_shows_sessions_once_it_does(tmp_path: Path) -> None:
    state = tmp_path / "state"
    server = start_server(["serve", "--state-dir", str(state), "--no-cache", "--poll-interval-s", "0.2"])
    try:
        assert "waiting for state dir" in server.startup
        health = httpx.get(server.url + "/healthz").json()
        assert health["reasons"] == [f"{state}: {WAITING}"] and health["sessions"] == 0
        shutil.copytree(SMALL_STATE, state)
        deadline = time.monotonic() + 20
        answer: object = None
        while time.monotonic() < deadline:
            answer = httpx.get(server.url + "/api/sessions").json()
            assert isinstance(answer, dict)
            if {row["agentId"] for row in answer["sessions"]} == {"main", "ops"}:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"agents never appeared; last answer: {str(answer)[:500]}")
        assert httpx.get(server.url + "/healthz").json()["status"] == "ok"
    finally:
        stop_server(server)


def test_file_events_work_when_the_state_dir_appears_after_start(tmp_path: Path) -> None:
    """Started before the state dir exists, changes must still show at once, not at the next full
    scan: the poll interval here (60 s) is far longer than the deadlines below."""
    state = tmp_path / "state"
    server = start_server(["serve", "--state-dir", str(state), "--no-cache", "--poll-interval-s", "60"])
    try:
        state.mkdir()
        shutil.copytree(SMALL_STATE / "agents" / "ops", state / "agents" / "ops")
        index = state / "agents" / "ops" / "sessions" / "sessions.json"
        deadline = time.monotonic() + 20
        answer: object = None
        while time.monotonic() < deadline:
            answer = httpx.get(server.url + "/api/sessions").json()
            assert isinstance(answer, dict)
            if any(row["key"] == "agent:ops:incident-long" for row in answer["sessions"]):
                break
            os.utime(index)  # OpenClaw keeps writing: an event the watcher (once up) reports
            time.sleep(0.2)
        else:
            raise AssertionError(f"agent ops never appeared before the next full scan; last: {str(answer)[:300]}")
        with open(state / OPS_TRANSCRIPT, "a") as fh:
            fh.write(json.dumps(_call_line(31_000)) + "\n")
        row: object = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            row = httpx.get(server.url + "/api/sessions/agent:ops:incident-long").json()["row"]
            if isinstance(row, dict) and row["contextTokens"] == 31_000:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the append did not show before the next full scan; last: {row}")
    finally:
        stop_server(server)


def _call_line(prompt: int) -> dict[str, object]:
    message = {
        "role": "assistant",
        "provider": "mock",
        "model": "mock-small",
        "usage": {"input": prompt, "output": 1, "cost": {"total": 0.01}},
        "stopReason": "stop",
        "timestamp": "2026-11-24T18:00:00.000Z",
    }
    return {"type": "message", "id": "late1", "timestamp": "2026-11-24T18:00:00.000Z", "message": message}


def test_a_database_being_created_is_not_a_fault_until_it_lasts(tmp_path: Path) -> None:
    """OpenClaw creates the agent's database file before its tables."""
    state = tmp_path / "state"
    database = state / "agents" / "main" / "agent" / "openclaw-agent.sqlite"
    database.parent.mkdir(parents=True)
    sqlite3.connect(database).close()  # a database without tables, as at the first moment
    store = _follow(state)
    assert store.scan().health.conditions == {}
    store.sqlite["main"].schema_grace_s = 0.0  # it lasts: now it is reported
    assert "no such table" in store.scan().health.conditions[str(database)]
    database.unlink()
    shutil.copy(REAL_SQLITE / "state" / "agents" / "main" / "agent" / "openclaw-agent.sqlite", database)
    snap = store.scan()
    assert snap.health.conditions == {} and {row.agent_id for row in snap.rows} == {"main"}


def test_a_config_written_after_start_prices_calls_already_read(small_state: Path) -> None:
    """The gateway writes its config after clawstats started: calls without a recorded cost that
    were read before it are priced again with the config's prices."""
    state = small_state
    line = _call_line(10_000)
    line["id"] = "nocost1"
    message = line["message"]
    assert isinstance(message, dict)
    message["usage"] = {"input": 1_000_000, "output": 0}  # no recorded cost
    with open(state / OPS_TRANSCRIPT, "a") as fh:
        fh.write(json.dumps(line) + "\n")
    store = _follow(state)
    _full_scan(store)
    before = store.scan().by_key["agent:ops:incident-long"]
    config = {"models": {"providers": {"mock": {"models": [{"id": "mock-small", "cost": {"input": 7, "output": 0}}]}}}}
    (state / "openclaw.json").write_text(json.dumps(config))
    _full_scan(store)
    after = store.scan().by_key["agent:ops:incident-long"]
    assert before.cost_source == "partial" and after.cost_source == "computed"  # 1M input tokens at $7/M
    assert before.total_cost is not None and after.total_cost is not None
    assert abs((after.total_cost - before.total_cost) - 7.0) < 1e-9
