"""The SQLite store of OpenClaw 2026.9.6 against its own views (captures/), and live writes."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path

import msgspec
import pytest
import zstandard

from clawstats.core.snapshot import Snapshot
from clawstats.watch.sqlite_store import SqliteAgent
from tests.conftest import REAL_SQLITE, capture, make_store, scan
from tests.core.lines import LIVE_MS, append_events, current_session_id, live_call, octet_length
from tests.core.lines import writer as schema_writer


@pytest.fixture(scope="module")
def snap(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    state = tmp_path_factory.mktemp("sq") / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    return scan(state)


def test_context_and_window_equal_openclaw_sessions(snap: Snapshot) -> None:
    listed = capture(REAL_SQLITE, "cli-sessions-all-agents.json")["sessions"]
    assert len(listed) == 10
    for expected in listed:
        row = snap.by_key[expected["key"]]
        assert row.context_tokens == expected["totalTokens"]
        assert row.context_window == expected["contextTokens"]
        assert row.model == f"{expected['modelProvider']}/{expected['model']}"
        assert row.context_source == "snapshot"


def test_cost_equals_openclaw_usage_and_totals(snap: Snapshot) -> None:
    usage = capture(REAL_SQLITE, "rpc-sessions.usage-all.json")
    for expected in usage["sessions"]:
        assert math.isclose(snap.by_key[expected["key"]].total_cost, expected["usage"]["totalCost"], abs_tol=1e-9)
    assert math.isclose(snap.totals.total_cost, usage["totals"]["totalCost"], abs_tol=1e-9)
    assert math.isclose(snap.totals.total_cost, 1.4261643, abs_tol=1e-9)
    assert snap.health.layouts == {"main": "sqlite", "ops": "sqlite"}
    assert snap.health.status == "ok"
    compressed = 0
    for agent in ("main", "ops"):
        uri = f"file:{REAL_SQLITE}/state/agents/{agent}/agent/openclaw-agent.sqlite?mode=ro&immutable=1"
        with sqlite3.connect(uri, uri=True) as db:
            compressed += db.execute("SELECT count(*) FROM transcript_events WHERE event_zstd IS NOT NULL").fetchone()[
                0
            ]
    assert compressed >= 5  # both encodings are in the sums above


def test_compactions_reset_and_subagent(snap: Snapshot) -> None:
    assert snap.by_key["agent:main:manual-compact"].compaction_count == 1
    assert snap.by_key["agent:ops:incident-long"].compaction_count == 1
    detail = snap.detail("agent:ops:incident-long")
    assert detail is not None and detail.compactions[0].tokens_after is not None
    sub = snap.by_key["agent:main:subagent:d7329713-e298-471a-9bb6-aada815439b2"]
    assert sub.kind == "subagent"
    reset = snap.by_key["agent:main:reset-me"]
    assert reset.messages.assistant == 5  # messages before the reset event still count, as in OpenClaw


def test_live_writer_sees_no_busy_and_changes_arrive(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    database = state / "agents/ops/agent/openclaw-agent.sqlite"
    store = make_store(state)
    before = store.scan().by_key["agent:ops:quick"]
    writer = schema_writer(database)
    writer.execute("PRAGMA busy_timeout=0")  # any lock contention raises SQLITE_BUSY
    writer.execute("PRAGMA journal_mode=WAL")
    sid = current_session_id(writer, "agent:ops:quick")
    for step in range(20):
        with writer:
            append_events(writer, sid, [live_call(f"live-{step}", 0.25)], LIVE_MS)
        store.scan()  # reader interleaved with the writer: the writer never sees SQLITE_BUSY
    with writer:
        entry = json.loads(
            writer.execute("SELECT entry_json FROM session_nodes WHERE session_key='agent:ops:quick'").fetchone()[0]
        )
        entry.update(updatedAt=1795550400001, totalTokens=20000)
        writer.execute(
            "UPDATE session_nodes SET entry_json = ?, updated_at = ? WHERE session_key = 'agent:ops:quick'",
            (json.dumps(entry), 1795550400001),
        )
    writer.close()
    after = store.scan().by_key["agent:ops:quick"]
    assert math.isclose(after.total_cost, before.total_cost + 20 * 0.25, abs_tol=1e-9)
    assert after.context_tokens == 20000 and after.updated_at_ms == 1795550400001


def test_corrupt_database_degrades(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    database = state / "agents/ops/agent/openclaw-agent.sqlite"
    database.write_bytes(database.read_bytes()[:4096])  # truncated
    snap = scan(state)
    assert snap.health.status == "degraded"
    assert any("SQLite" in reason for reason in snap.health.conditions.values())
    assert {r.agent_id for r in snap.rows} == {"main"}


def _events_read(store: object) -> int:
    return sum(agent.events_read for agent in store.agents.values() if isinstance(agent, SqliteAgent))


def test_warm_restart_reads_no_events_and_deleted_events_are_reread(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    cache_dir = str(tmp_path / "cache")
    first = make_store(state, no_cache=False, cache_dir=cache_dir)
    cold = first.scan()
    assert _events_read(first) == 232
    assert first.cache is not None
    first.flush(force=True)
    second = make_store(state, no_cache=False, cache_dir=cache_dir)
    warm = second.scan()
    assert _events_read(second) == 0
    assert warm.rows == cold.rows and warm.totals == cold.totals
    database = state / "agents/ops/agent/openclaw-agent.sqlite"
    with sqlite3.connect(database) as db:
        sid, top = db.execute(
            "SELECT session_id, max(seq) FROM transcript_events WHERE session_id = "
            "(SELECT current_session_id FROM session_nodes WHERE session_key = 'agent:ops:quick')"
        ).fetchone()
        db.execute("DELETE FROM transcript_events WHERE session_id = ? AND seq >= ?", (sid, top - 1))
    after = second.scan().by_key["agent:ops:quick"]
    assert after.messages.assistant == cold.by_key["agent:ops:quick"].messages.assistant - 1


def test_cursors_cached_by_the_previous_build_are_read_again_once_and_deleted(tmp_path: Path) -> None:
    """A cache written by the build before: cursors under ``<database>#<sessionId>`` with a
    version-10 image. No state of another version is restored, so none is ever "left unread" for
    the store to forget: the index deletes them when it restores (they stayed in the file for
    good, and were read and rejected at every start)."""
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    cache_dir = str(tmp_path / "cache")
    first = make_store(state, no_cache=False, cache_dir=cache_dir)
    cold = first.scan()
    first.close()
    assert first.cache is not None
    with sqlite3.connect(first.cache.path) as db:
        cursors = db.execute("SELECT path, state FROM files WHERE path NOT LIKE '/%'").fetchall()
        assert len(cursors) == 10
        for path, blob in cursors:  # as the previous build wrote them
            agent, _, sid = path.partition("/")
            image = msgspec.msgpack.decode(blob)
            image[0] = 10
            old_id = f"{state}/agents/{agent}/agent/openclaw-agent.sqlite#{sid}"
            db.execute(
                "UPDATE files SET path = ?, state = ? WHERE path = ?", (old_id, msgspec.msgpack.encode(image), path)
            )
    db.close()
    second = make_store(state, no_cache=False, cache_dir=cache_dir)
    warm = second.scan()
    assert _events_read(second) == 232 and warm.rows == cold.rows  # read again, once
    second.close()
    with sqlite3.connect(first.cache.path) as db:
        paths = [path for (path,) in db.execute("SELECT path FROM files")]
    db.close()
    assert not [path for path in paths if "#" in path]
    assert sorted(path for path in paths if not path.startswith("/")) == sorted(path for path, _ in cursors)
    third = make_store(state, no_cache=False, cache_dir=cache_dir)
    assert third.scan().rows == cold.rows and _events_read(third) == 0


def test_locked_database_degrades_then_recovers(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    database = state / "agents/ops/agent/openclaw-agent.sqlite"
    locker = sqlite3.connect(database, isolation_level=None)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("UPDATE session_nodes SET updated_at = updated_at + 1 WHERE session_key = 'agent:ops:quick'")
    store = make_store(state)
    during = store.scan()
    assert during.health.status == "degraded"
    assert any("locked" in reason for reason in during.health.conditions.values())
    assert {r.agent_id for r in during.rows} == {"main"}
    locker.execute("COMMIT")
    locker.close()
    after = store.scan()
    assert after.health.status == "ok" and "agent:ops:quick" in after.by_key


def test_missing_table_degrades(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    with sqlite3.connect(state / "agents/ops/agent/openclaw-agent.sqlite") as db:
        db.execute("DROP TABLE session_nodes")
    snap = scan(state)
    assert snap.health.status == "degraded"
    assert any("no such table" in reason for reason in snap.health.conditions.values())


@pytest.mark.parametrize(("agent", "key"), [("main", "agent:main:manual-compact"), ("ops", "agent:ops:incident-long")])
def test_fresh_looking_tokens_after_is_replaced_by_an_estimate(tmp_path: Path, agent: str, key: str) -> None:
    """2026.9.6 right after a compaction: row totalTokens = tokensAfter, "fresh", no call since."""
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    database = state / f"agents/{agent}/agent/openclaw-agent.sqlite"
    store = make_store(state)
    with sqlite3.connect(database) as db:
        db.create_function("octet_length", 1, octet_length, deterministic=True)
        sid = db.execute("SELECT current_session_id FROM session_nodes WHERE session_key = ?", (key,)).fetchone()[0]
        events = db.execute(
            "SELECT seq, event_json, event_zstd, created_at, event_utf8_bytes, navigation_json FROM transcript_events "
            "WHERE session_id = ? ORDER BY seq",
            (sid,),
        ).fetchall()
        decoded = [json.loads(e[1] if e[1] else zstandard.ZstdDecompressor().decompress(e[2])) for e in events]
        at = max(i for i, e in enumerate(decoded) if e["type"] == "compaction")
        tokens_after = decoded[at]["tokensAfter"]
        next_call = next(e for e in decoded[at:] if e["type"] == "message" and e["message"]["role"] == "assistant")
        real_prompt = next_call["message"]["usage"]["input"] + next_call["message"]["usage"]["cacheRead"]
        db.execute("DELETE FROM transcript_events WHERE session_id = ? AND seq > ?", (sid, events[at][0]))
        entry = json.loads(
            db.execute("SELECT entry_json FROM session_nodes WHERE session_key = ?", (key,)).fetchone()[0]
        )
        for name in ("inputTokens", "outputTokens", "cacheRead", "cacheWrite", "estimatedCostUsd"):
            entry.pop(name, None)
        entry.update(totalTokens=tokens_after, totalTokensFresh=True)
        db.execute("UPDATE session_nodes SET entry_json = ? WHERE session_key = ?", (json.dumps(entry), key))
    row = store.scan().by_key[key]
    assert row.context_source == "estimate" and row.snapshot_stale
    assert row.context_tokens is not None and row.context_tokens > 4 * tokens_after
    with sqlite3.connect(database) as db:  # the next user message arrives, the call has not returned yet
        db.create_function("octet_length", 1, octet_length, deterministic=True)
        db.execute(
            "INSERT INTO transcript_events (session_id, seq, event_json, event_zstd, created_at, event_utf8_bytes, "
            "navigation_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sid, *events[at + 1]),
        )
    grown = store.scan().by_key[key]
    assert grown.context_source == "estimate"
    assert grown.context_tokens is not None
    assert abs(grown.context_tokens - real_prompt) / real_prompt < 0.03, (grown.context_tokens, real_prompt)
    assert abs(tokens_after - real_prompt) / real_prompt > 0.75  # what OpenClaw itself would show


def test_row_with_invalid_utf8_is_a_counted_skip(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    with sqlite3.connect(state / "agents/ops/agent/openclaw-agent.sqlite") as db:
        db.execute(
            "UPDATE session_nodes SET entry_json = CAST(X'7B226D6F64656C223A22FF227D' AS TEXT) WHERE session_key = ?",
            ("agent:ops:quick",),
        )
    snap = scan(state)
    assert "agent:ops:quick" not in snap.by_key and "agent:ops:incident-long" in snap.by_key
    assert snap.health.counters == {"rowMalformed": 1}
    assert snap.health.status == "ok"
