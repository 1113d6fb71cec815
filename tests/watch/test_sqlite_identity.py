"""A SQLite store changed under the reader: replaced by rename, or events deleted below the cursor."""

from __future__ import annotations

import json
import os
import shutil
from contextlib import closing
from pathlib import Path

import pytest

from clawstats.watch.sqlite_store import SqliteAgent
from clawstats.watch.store import StatsStore
from tests.conftest import make_store
from tests.core.lines import append_events, assistant, sqlite_path, sqlite_state_with, stamp, usage, writer


def _call(minute: int, cost: float) -> dict[str, object]:
    return {"id": f"c{minute}", **assistant(use=usage(100, 10, cost=cost), ts=stamp(minute))}


def _open_fds_to_deleted(name: str) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if name in target and target.endswith("(deleted)"):
            found.append(target)
    return found


def test_database_replaced_by_rename_is_followed(tmp_path: Path) -> None:
    state = sqlite_state_with(tmp_path, {"keep": [_call(1, 0.5)], "gone": [_call(2, 0.25)]})
    store = make_store(state)
    before = store.scan()
    assert set(before.by_key) == {"agent:main:keep", "agent:main:gone"}
    # A restore from backup: a copy without one session renamed over the live file.
    db_path = sqlite_path(state)
    copy = db_path.with_name("restored.sqlite")
    shutil.copyfile(db_path, copy)
    with closing(writer(copy)) as db, db:
        db.execute("DELETE FROM session_nodes WHERE session_key = 'agent:main:gone'")
        db.execute("DELETE FROM transcript_events WHERE session_id = 'gone'")
    os.replace(copy, db_path)
    after = store.scan()  # the next poll
    assert set(after.by_key) == {"agent:main:keep"}
    assert after.revision > before.revision
    assert after.totals.total_cost == 0.5
    assert _open_fds_to_deleted("openclaw-agent.sqlite") == []


def test_event_deleted_below_the_cursor_while_one_is_added_above(tmp_path: Path) -> None:
    state = sqlite_state_with(tmp_path, {"s1": [_call(1, 0.5), _call(2, 0.25), _call(3, 0.125)]})
    store = make_store(state)
    assert store.scan().totals.total_cost == 0.875
    with closing(writer(sqlite_path(state))) as db, db:
        db.execute("DELETE FROM transcript_events WHERE session_id = 's1' AND seq = 2")
        append_events(db, "s1", [_call(4, 1.0)])  # max(seq) grows: only the count tells
    served = store.scan().totals.total_cost
    fresh = make_store(state).scan().totals.total_cost
    assert served == fresh == 1.625


def test_event_deleted_while_another_session_grows_is_seen_by_the_next_count(tmp_path: Path) -> None:
    """A change with new events follows only the sessions they are in; a deletion elsewhere in the
    same change shows when every event is next counted: after a change without new events (a
    write to another table), at most every ``deletion_check_s``, by a later scan if that is due."""
    state = sqlite_state_with(tmp_path, {"s1": [_call(1, 0.5), _call(2, 0.25)], "s2": [_call(3, 0.125)]})
    store = make_store(state)
    assert store.scan().totals.total_cost == 0.875
    agent = store.agents["main"]
    assert isinstance(agent, SqliteAgent)
    agent.deletion_check_s = 3600.0
    with closing(writer(sqlite_path(state))) as db, db:
        db.execute("DELETE FROM transcript_events WHERE session_id = 's1' AND seq = 1")
        append_events(db, "s2", [_call(4, 1.0)])
    assert store.scan(set()).totals.total_cost == 1.875  # s2 followed; s1 not named by a new event
    counts = agent.counts
    with closing(writer(sqlite_path(state))) as db, db:  # the runtime trace, a cache: no event, no node
        db.execute("INSERT INTO cache_entries (scope, key, value_json, updated_at) VALUES ('t', 'k', '1', 1)")
    assert store.scan(set()).totals.total_cost == 1.875 and agent.counts == counts  # not due yet
    agent.deletion_check_s = 0.0
    served = store.scan(set()).totals.total_cost  # nothing written since: the count that was due
    assert agent.counts > counts
    assert served == make_store(state).scan().totals.total_cost == 1.375


def test_node_deleted_in_place_goes_by_the_next_count(tmp_path: Path) -> None:
    """Nodes are counted (a deletion) at most every ``deletion_check_s``, not per commit; a later
    scan counts when that is due, even with nothing more written."""
    state = sqlite_state_with(tmp_path, {"keep": [_call(1, 0.5)], "gone": [_call(2, 0.25)]})
    store = make_store(state)
    assert set(store.scan().by_key) == {"agent:main:keep", "agent:main:gone"}
    agent = store.agents["main"]
    assert isinstance(agent, SqliteAgent)
    agent.deletion_check_s = 3600.0
    with closing(writer(sqlite_path(state))) as db, db:
        db.execute("DELETE FROM session_nodes WHERE session_key = 'agent:main:gone'")
    assert "agent:main:gone" in store.scan(set()).by_key  # not counted yet
    agent.deletion_check_s = 0.0
    after = store.scan(set())
    assert set(after.by_key) == {"agent:main:keep"} and after.totals.total_cost == 0.5


# Found by review: changes a count, compared at the wrong moment or unchanged, hid.


def _served_equals_a_fresh_read(store: StatsStore, state: Path) -> None:
    for _ in range(3):  # the poller keeps scanning; nothing more is written
        served = store.scan(set())
    fresh = make_store(state).scan()
    assert sorted(served.by_key) == sorted(fresh.by_key)
    assert served.totals.total_cost == fresh.totals.total_cost


def _store_counting_now(state: Path) -> StatsStore:
    store = make_store(state)
    store.scan()
    agent = store.agents["main"]
    assert isinstance(agent, SqliteAgent)
    agent.deletion_check_s = 0.0  # every read is due to count (as after an idle spell)
    return store


def test_a_deletion_in_a_read_that_also_brings_new_events_is_seen(tmp_path: Path) -> None:
    state = sqlite_state_with(tmp_path, {"s1": [_call(1, 0.5), _call(2, 0.25)], "s2": [_call(3, 0.125)]})
    store = _store_counting_now(state)
    with closing(writer(sqlite_path(state))) as db, db:
        db.execute("DELETE FROM transcript_events WHERE session_id = 's1' AND seq = 1")
        append_events(db, "s2", [_call(4, 1.0)])
    _served_equals_a_fresh_read(store, state)


def test_a_node_deleted_as_another_comes_is_gone(tmp_path: Path) -> None:
    state = sqlite_state_with(tmp_path, {"keep": [_call(1, 0.5)], "child1": [_call(2, 0.25)]})
    store = _store_counting_now(state)
    with closing(writer(sqlite_path(state))) as db, db:
        db.execute("DELETE FROM session_nodes WHERE session_key = 'agent:main:child1'")
        db.execute("DELETE FROM transcript_events WHERE session_id = 'child1'")
        append_events(db, "child2", [_call(3, 0.125)])
        entry = json.dumps({"sessionId": "child2", "updatedAt": 1795540100000})
        db.execute(
            "INSERT INTO session_nodes (session_key, current_session_id, entry_json, updated_at) VALUES (?, ?, ?, ?)",
            ("agent:main:child2", "child2", entry, 1795540100000),
        )
    _served_equals_a_fresh_read(store, state)


@pytest.mark.parametrize("node_moved", [False, True])
def test_reused_rowids_are_not_taken_for_no_change(tmp_path: Path, node_moved: bool) -> None:
    """No AUTOINCREMENT: the newest event deleted, the next insert takes its rowid, so max(rowid)
    and count(*) stay as they were while one session lost an event and another gained one."""
    state = sqlite_state_with(tmp_path, {"s1": [_call(1, 0.5)], "s2": [_call(2, 0.25), _call(3, 0.125)]})
    store = _store_counting_now(state)
    with closing(writer(sqlite_path(state))) as db, db:
        db.execute("DELETE FROM transcript_events WHERE session_id = 's2' AND seq = 2")
        append_events(db, "s1", [_call(4, 1.0)])
        if node_moved:
            db.execute("UPDATE session_nodes SET updated_at = updated_at + 1 WHERE session_key = 'agent:main:s1'")
    store.scan(set())
    if node_moved:
        with closing(writer(sqlite_path(state))) as db, db:  # then a write to another table
            db.execute("INSERT INTO cache_entries (scope, key, value_json, updated_at) VALUES ('t', 'k', '1', 1)")
    _served_equals_a_fresh_read(store, state)
