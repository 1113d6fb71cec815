"""Work follows what changed: an append rebuilds its own row only (rows counted, not timed).

Stores of many sessions are built by copying one real transcript (and its index row) under
new session ids; the real file and SQLite fixtures supply the lines.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
from _collections_abc import dict_items, dict_keys, dict_values
from collections.abc import Iterator
from pathlib import Path

import pytest

from clawstats.core.snapshot import Snapshot
from clawstats.watch import listing
from clawstats.watch.file_agent import FileAgent
from clawstats.watch.sqlite_store import SqliteAgent
from clawstats.watch.store import StatsStore
from tests.conftest import OPS_TRANSCRIPT, REAL_SQLITE, make_store
from tests.core.lines import LIVE_MS, append_events, current_session_id, live_call
from tests.core.lines import writer as schema_writer
from tests.openclaw.attrib_data import ATTRIB_STATE, CRON_JOB, CRON_KEYS, KEPT_CHILD, PARENT

COPIES = 300


def _many_sessions(state: Path) -> list[tuple[str, Path]]:
    """``COPIES`` more ops sessions, each a copy of the real ops transcript with its own row."""
    sessions = state / "agents/ops/sessions"
    index_path = sessions / "sessions.json"
    index = json.loads(index_path.read_text())
    name = Path(OPS_TRANSCRIPT).name
    template = next(row for row in index.values() if str(row.get("sessionFile", "")).endswith(name))
    made = []
    for n in range(COPIES):
        sid = f"00000000-0000-4000-8000-{n:012d}"
        path = sessions / f"{sid}.jsonl"
        shutil.copyfile(state / OPS_TRANSCRIPT, path)
        key = f"agent:ops:copy-{n}"
        index[key] = {**template, "sessionId": sid, "sessionFile": str(path), "updatedAt": 1795540000000 + n}
        made.append((key, path))
    tmp = index_path.with_name("sessions.json.1.abc.tmp")
    tmp.write_text(json.dumps(index, indent=2))
    os.replace(tmp, index_path)
    return made


def _assistant_line(cost: float) -> bytes:
    entry = {
        "type": "message",
        "id": "feedf00d",
        "parentId": None,
        "timestamp": "2026-11-24T17:09:00.000Z",
        "message": {
            "role": "assistant",
            "content": [{"type": "text", "text": "ok"}],
            "provider": "mock",
            "model": "mock-small",
            "usage": {"input": 10, "output": 1, "cacheRead": 0, "cacheWrite": 0, "cost": {"total": cost}},
            "stopReason": "stop",
            "timestamp": 1795540140000,
        },
    }
    return json.dumps(entry).encode() + b"\n"


def _built(store: StatsStore) -> tuple[int, int]:
    return store.rows_built, store.rollup.transcripts_summed


def test_append_rebuilds_only_its_own_row(small_state: Path) -> None:
    made = _many_sessions(small_state)
    store = make_store(small_state)
    first = store.scan()
    assert len(first.rows) > COPIES and first.changed == frozenset(first.by_key)
    key, path = made[123]
    before = _built(store)
    with open(path, "ab") as fh:
        fh.write(_assistant_line(0.5))
    hinted = store.scan({str(path)})  # as the poller calls it: the path a file-system event named
    assert _built(store) == (before[0] + 1, before[1] + 1)  # one row built, one transcript's buckets re-summed
    assert hinted.changed == {key} and not hinted.removed
    assert abs(hinted.totals.total_cost - first.totals.total_cost - 0.5) < 1e-9
    assert hinted.by_key[key].total_cost - first.by_key[key].total_cost > 0.49
    with open(made[7][1], "ab") as fh:
        fh.write(_assistant_line(0.25))
    before = _built(store)
    full = store.scan()  # the safety scan stats every file but still rebuilds one row
    assert _built(store) == (before[0] + 1, before[1] + 1)
    assert full.changed == {made[7][0]}
    again = store.scan()  # nothing changed: same revision, nothing built
    assert again.revision == full.revision and _built(store) == (before[0] + 1, before[1] + 1)


def test_index_rewrite_reapplies_only_changed_rows(small_state: Path) -> None:
    made = _many_sessions(small_state)
    store = make_store(small_state)
    store.scan()
    index_path = small_state / "agents/ops/sessions/sessions.json"
    index = json.loads(index_path.read_text())
    index[made[5][0]]["updatedAt"] = 1795540999999  # OpenClaw rewrites the whole file per turn
    tmp = index_path.with_name("sessions.json.2.abc.tmp")
    tmp.write_text(json.dumps(index, indent=2))
    os.replace(tmp, index_path)
    before, planned = store.rows_built, _planned(store)
    snap = store.scan(set())
    assert store.rows_built == before + 1
    assert _planned(store) == planned + 1  # one row located again, not 300
    assert snap.changed == {made[5][0]} and snap.rows[0].key == made[5][0]  # newest first
    assert snap.rows == make_store(small_state).scan().rows


def test_a_planned_index_reload_keeps_no_set_of_its_keys(small_state: Path) -> None:
    """The keys a reload changed are for the next plan only: after a cold load they are every
    key (2 MiB at 50,000 sessions), kept while the store is idle if the plan left them."""
    made = _many_sessions(small_state)
    store = make_store(small_state)
    store.scan()
    agent = store.agents["ops"]
    assert isinstance(agent, FileAgent)
    assert agent.index.rows and not agent.index.changed
    index_path = small_state / "agents/ops/sessions/sessions.json"
    index = json.loads(index_path.read_text())
    index[made[5][0]]["updatedAt"] = 1795540999999
    _rewrite(index_path, index)
    planned = _planned(store)
    store.scan()
    assert _planned(store) == planned + 1 and not agent.index.changed


def _planned(store: StatsStore) -> int:
    agent = store.agents["ops"]
    assert isinstance(agent, FileAgent)
    return agent.rows_planned


def test_index_rewrites_that_move_a_transcript_plan_every_row_again(small_state: Path) -> None:
    """A reset (a new sessionId and transcript for a key), a new row and a removed row change
    claims, orphans and archive owners: the whole plan decides them, as on a cold read."""
    made = _many_sessions(small_state)
    store = make_store(small_state)
    store.scan()
    index_path = small_state / "agents/ops/sessions/sessions.json"
    index = json.loads(index_path.read_text())
    rows = len(index)
    sessions = index_path.parent
    reset_key, reset_path = made[9]
    new_sid = "99999999-0000-4000-8000-000000000009"
    reset_path.rename(sessions / f"{reset_path.stem}.jsonl.reset.2026-11-24T17-10-00.000Z")
    shutil.copyfile(small_state / OPS_TRANSCRIPT, sessions / f"{new_sid}.jsonl")
    index[reset_key].update(sessionId=new_sid, sessionFile=str(sessions / f"{new_sid}.jsonl"))
    for change in ("reset", "new row", "removed row"):
        if change == "new row":
            index["agent:ops:brand-new"] = {**index[made[0][0]], "updatedAt": 1795541000000}
        elif change == "removed row":
            del index[made[3][0]]
        tmp = index_path.with_name("sessions.json.3.abc.tmp")
        tmp.write_text(json.dumps(index, indent=2))
        os.replace(tmp, index_path)
        planned = _planned(store)
        snap = store.scan()
        assert _planned(store) - planned >= rows - 1, change  # every row located again
        # what only a plan of every row learns: the reset archive's owner (a cold read of this
        # copy has no trajectory sidecar to tell it), a removed row's transcript now an orphan
        archive = f"agent:ops:{reset_path.stem}"
        assert snap.by_key[archive].archived_from == reset_key, change
        assert (made[3][0] in snap.by_key) == (change != "removed row"), change
        assert ("agent:ops:brand-new" in snap.by_key) == (change != "reset"), change


@pytest.mark.parametrize("change", ["file gone", "folder made"])
def test_index_rewrite_locates_again_a_row_whose_transcript_is_elsewhere(small_state: Path, change: str) -> None:
    """A row whose sessionFile is outside the sessions dir is found by a stat, not by the
    listing: a rewrite of sessions.json that changes only another row still looks at it again
    (its file gone, or its folder made), as the whole plan does, so it is served as a cold read
    serves it."""
    made = _many_sessions(small_state)
    index_path = small_state / "agents/ops/sessions/sessions.json"
    index = json.loads(index_path.read_text())
    elsewhere = small_state.parent / "elsewhere"
    key, path = made[7]
    moved = elsewhere / path.name
    if change == "file gone":
        elsewhere.mkdir()
        shutil.copyfile(path, moved)
        with open(moved, "ab") as fh:
            fh.write(_assistant_line(0.25))  # not the copy in sessions/, which it falls back to
    index[key]["sessionFile"] = str(moved)
    _rewrite(index_path, index)
    store = make_store(small_state)
    first = store.scan()
    assert (first.by_key[key].total_cost - first.by_key[made[8][0]].total_cost > 0.24) == (change == "file gone")
    if change == "file gone":
        moved.unlink()
    else:
        elsewhere.mkdir()
        shutil.copyfile(path, moved)
        with open(moved, "ab") as fh:
            fh.write(_assistant_line(0.25))
    index[made[5][0]]["updatedAt"] = 1795541000000  # another row's turn
    _rewrite(index_path, index)
    snap = store.scan()
    assert snap.rows == make_store(small_state).scan().rows
    assert (snap.by_key[key].total_cost - snap.by_key[made[8][0]].total_cost > 0.24) == (change == "folder made")


def _rewrite(index_path: Path, index: dict[str, object]) -> None:
    tmp = index_path.with_name("sessions.json.4.abc.tmp")
    tmp.write_text(json.dumps(index, indent=2))
    os.replace(tmp, index_path)


def test_sqlite_new_event_rebuilds_only_its_session(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    database = state / "agents/ops/agent/openclaw-agent.sqlite"
    store = make_store(state)
    store.scan()
    with sqlite3.connect(database) as db:
        # The schema's CHECKs call octet_length(), built into SQLite >= 3.43; Python 3.11 bundles 3.40.
        db.create_function("octet_length", 1, lambda v: None if v is None else len(str(v).encode()))
        sid, top = db.execute(
            "SELECT session_id, max(seq) FROM transcript_events WHERE session_id = "
            "(SELECT current_session_id FROM session_nodes WHERE session_key = 'agent:ops:quick')"
        ).fetchone()
        db.execute(
            "INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES (?, ?, ?, ?)",
            (sid, top + 1, _assistant_line(0.5).decode(), 1795550400000),
        )
    before = store.rows_built
    snap = store.scan(set())
    assert store.rows_built == before + 1 and snap.changed == {"agent:ops:quick"}


def test_warm_start_forgets_transcripts_deleted_meanwhile_without_a_stat_each(
    small_state: Path, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    first = make_store(small_state, no_cache=False, cache_dir=str(cache_dir))
    first.scan()
    first.close()
    gone = small_state / OPS_TRANSCRIPT
    gone.unlink()
    second = make_store(small_state, no_cache=False, cache_dir=str(cache_dir))
    second.scan()
    second.close()
    assert second.cache is not None
    with sqlite3.connect(second.cache.path) as db:
        paths = {path for (path,) in db.execute("SELECT path FROM files")}
    assert str(gone) not in paths and len(paths) > 3


def test_sqlite_node_update_reads_and_rebuilds_only_that_node(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    database = state / "agents/ops/agent/openclaw-agent.sqlite"
    store = make_store(state)
    store.scan()
    with sqlite3.connect(database) as db:
        (entry,) = db.execute("SELECT entry_json FROM session_nodes WHERE session_key = 'agent:ops:quick'").fetchone()
        doc = json.loads(entry)
        doc.update(updatedAt=1795550400001, label="renamed")
        db.execute(
            "UPDATE session_nodes SET entry_json = ?, updated_at = ? WHERE session_key = 'agent:ops:quick'",
            (json.dumps(doc), 1795550400001),
        )
    before = store.rows_built
    snap = store.scan(set())
    assert store.rows_built == before + 1 and snap.changed == {"agent:ops:quick"}
    assert snap.by_key["agent:ops:quick"].label == "renamed"


def test_append_to_a_sub_agent_moves_its_ancestors_tree_cost_without_a_full_tree(tmp_path: Path) -> None:
    """Lineage enrichment follows the change: the child's row is rebuilt, its ancestors' tree cost
    is summed again, nothing else changes, and the result equals a cold scan of the same files."""
    state = tmp_path / "state"
    shutil.copytree(ATTRIB_STATE, state)
    store = make_store(state)
    first = store.scan()
    child = first.by_key[KEPT_CHILD]
    assert child.parent_key == PARENT and first.by_key[PARENT].tree_cost is not None
    source = store._sources[KEPT_CHILD]
    assert source.stats_id is not None
    built, passes = store.rows_built, store._enricher.full_passes
    with open(source.stats_id, "ab") as fh:
        fh.write(_assistant_line(0.5))
    after = store.scan({source.stats_id})
    assert store.rows_built == built + 1 and store._enricher.full_passes == passes
    ancestors = {PARENT} | ({first.by_key[PARENT].parent_key} - {None})
    assert after.changed == {KEPT_CHILD} | {k for k in ancestors if k in after.by_key}
    assert math.isclose(after.by_key[PARENT].tree_cost or 0.0, (first.by_key[PARENT].tree_cost or 0.0) + 0.5)
    cold = make_store(state).scan()
    for key, row in cold.by_key.items():
        assert math.isclose(after.by_key[key].tree_cost or 0.0, row.tree_cost or 0.0, abs_tol=1e-9), key
        assert after.by_key[key].parent_key == row.parent_key and after.by_key[key].root_key == row.root_key


def _same_lineage(after: Snapshot, state: Path) -> None:
    cold = make_store(state).scan()
    assert after.by_key.keys() == cold.by_key.keys()
    for key, row in cold.by_key.items():
        assert math.isclose(after.by_key[key].tree_cost or 0.0, row.tree_cost or 0.0, abs_tol=1e-9), key
        assert (after.by_key[key].parent_key, after.by_key[key].root_key) == (row.parent_key, row.root_key), key


def test_a_new_cron_run_and_its_removal_patch_the_tree_in_place(tmp_path: Path) -> None:
    """A session added as a leaf (here a cron run under its job) and removed again: the kept tree
    takes both without a full build, and equals a cold scan each time."""
    state = tmp_path / "state"
    shutil.copytree(ATTRIB_STATE, state)
    sessions = state / "agents/main/sessions"
    store = make_store(state)
    first = store.scan()
    job = f"agent:main:cron:{CRON_JOB}"
    passes = store._enricher.full_passes
    index_path = sessions / "sessions.json"
    index = json.loads(index_path.read_text())
    sid = "00000000-0000-4000-8000-00000000c0de"
    earlier_run = sessions / f"{CRON_KEYS[1].rsplit(':', 1)[1]}.jsonl"  # an earlier run's transcript
    shutil.copyfile(earlier_run, sessions / f"{sid}.jsonl")
    run = f"{job}:run:{sid}"
    index[run] = {**index[job], "sessionId": sid, "sessionFile": str(sessions / f"{sid}.jsonl")}
    index_path.write_text(json.dumps(index))
    added = store.scan()
    assert run in added.by_key and added.by_key[run].parent_key == job
    assert store._enricher.full_passes == passes
    assert (added.by_key[job].tree_cost or 0.0) > (first.by_key[job].tree_cost or 0.0)
    _same_lineage(added, state)
    del index[run]
    index_path.write_text(json.dumps(index))
    (sessions / f"{sid}.jsonl").unlink()
    removed = store.scan()
    assert run not in removed.by_key and store._enricher.full_passes == passes
    _same_lineage(removed, state)


class _Walks(dict[str, object]):
    """A dict that counts the entries it hands out when walked whole (iteration, keys, values,
    items, copy); lookups and stores are free. ``walked`` is shared by every map of one test."""

    def __init__(self, data: dict[str, object], walked: list[int]) -> None:
        super().__init__(data)
        self.walked = walked

    def _walk(self) -> None:
        self.walked[0] += len(self)

    def __iter__(self) -> Iterator[str]:
        self._walk()
        return super().__iter__()

    def keys(self) -> dict_keys[str, object]:
        self._walk()
        return super().keys()

    def values(self) -> dict_values[str, object]:
        self._walk()
        return super().values()

    def items(self) -> dict_items[str, object]:
        self._walk()
        return super().items()

    def copy(self) -> dict[str, object]:
        self._walk()
        return dict(super().items())


def _watch_maps(owner: object, walked: list[int]) -> None:
    """Every dict attribute of ``owner`` (its per-session maps) counts its walks from now on."""
    for name, value in vars(owner).items():
        # (``changed_keys``: the keys changed since the last scan, each with its source before, a
        # dict the store walks: the change's own keys, no map of every session)
        if type(value) is dict and name != "changed_keys":
            setattr(owner, name, _Walks(value, walked))


def test_sqlite_turn_walks_no_per_session_map(tmp_path: Path) -> None:
    """A turn (a new event, then its node bumped, as OpenClaw writes them) is read by looking up the
    one session it names: no map of every session or cursor of the database is walked (they hold
    50,000 entries at scale). Only a safety scan walks them."""
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    database = state / "agents/ops/agent/openclaw-agent.sqlite"
    store = make_store(state)
    first = store.scan()
    agent = store.agents["ops"]
    assert isinstance(agent, SqliteAgent) and len(agent.nodes) > 1
    agent.deletion_check_s = 3600.0  # nodes and events are counted (deletions) at most this often
    walked, counts = [0], agent.counts
    _watch_maps(agent, walked)
    _watch_maps(agent.archives, walked)
    with schema_writer(database) as db:
        sid = current_session_id(db, "agent:ops:quick")
        append_events(db, sid, [live_call("turn-1", 0.5)], LIVE_MS)
        (entry,) = db.execute("SELECT entry_json FROM session_nodes WHERE session_key = 'agent:ops:quick'").fetchone()
        db.execute(
            "UPDATE session_nodes SET entry_json = ?, updated_at = ? WHERE session_key = 'agent:ops:quick'",
            (json.dumps({**json.loads(entry), "updatedAt": LIVE_MS}), LIVE_MS),
        )
    before = store.rows_built
    snap = store.scan(set())
    assert snap.changed == {"agent:ops:quick"} and store.rows_built == before + 1
    assert math.isclose(snap.totals.total_cost, first.totals.total_cost + 0.5, abs_tol=1e-9)
    assert walked == [0] and agent.counts == counts
    again = store.scan(set())  # nothing new: the database's marker is unchanged, nothing is read
    assert again.revision == snap.revision and walked == [0]
    with schema_writer(database) as db:
        append_events(db, sid, [live_call("turn-2", 0.25)], LIVE_MS)
    store.scan()  # a safety scan reads every node: the counting sees that walk
    assert walked[0] >= len(agent.nodes)


def test_sqlite_write_to_another_table_reads_no_session(tmp_path: Path) -> None:
    """A commit with no transcript event and no node (the gateway's runtime trace, its caches) moves
    the database's marker: it costs at most one count of the events (at most every
    ``deletion_check_s``, here each time), not a check of every session."""
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    database = state / "agents/ops/agent/openclaw-agent.sqlite"
    store = make_store(state)
    first = store.scan()
    agent = store.agents["ops"]
    assert isinstance(agent, SqliteAgent)
    agent.deletion_check_s = 0.0
    walked, events, counts = [0], agent.events_read, agent.counts
    _watch_maps(agent, walked)
    with schema_writer(database) as db:
        db.execute("INSERT INTO cache_entries (scope, key, value_json, updated_at) VALUES ('t', 'k', '1', 1)")
    snap = store.scan(set())
    assert snap.revision == first.revision and agent.events_read == events
    assert agent.counts == counts + 1 and walked == [0]


def test_a_sessions_json_replaced_by_rename_is_not_a_reason_to_list_the_directory(
    small_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenClaw's rename of sessions.json after every turn moves the directory's mtime: with the
    events naming nothing new, the listing stands (it is 17 ms of a turn at 50,000 sessions). A
    transcript an event names, one found gone, the safety scan and ``RELIST_S`` list it again."""
    made = _many_sessions(small_state)
    store = make_store(small_state)
    store.scan()
    agent = store.agents["ops"]
    assert isinstance(agent, FileAgent)
    index_path = small_state / "agents/ops/sessions/sessions.json"
    tmp = index_path.with_name("sessions.json.4.abc.tmp")

    def rewrite(n: int) -> set[str]:
        index = json.loads(index_path.read_text())
        index[made[n][0]]["updatedAt"] = 1795541000000 + n
        tmp.write_text(json.dumps(index, indent=2))
        os.replace(tmp, index_path)
        return {str(index_path), str(tmp)}  # what the events name

    listings = agent.listing.listings
    snap = store.scan(rewrite(1))
    assert agent.listing.listings == listings and snap.changed == {made[1][0]}
    # a new transcript the events name: listed at once (an orphan row)
    new = index_path.with_name("11111111-2222-4333-8444-555555555555.jsonl")
    shutil.copyfile(made[0][1], new)
    snap = store.scan(rewrite(2) | {str(new)})
    assert agent.listing.listings == listings + 1 and f"agent:ops:{new.stem}" in snap.by_key
    # one no event named (dropped by the kernel): seen by the safety scan, or after RELIST_S
    other = index_path.with_name("22222222-2222-4333-8444-555555555555.jsonl")
    shutil.copyfile(made[0][1], other)
    assert f"agent:ops:{other.stem}" not in store.scan(rewrite(3)).by_key
    monkeypatch.setattr(listing, "RELIST_S", 0.0)
    assert f"agent:ops:{other.stem}" in store.scan(rewrite(4)).by_key
    monkeypatch.setattr(listing, "RELIST_S", 3600.0)
    # a listed transcript deleted (its event names a listed name): the read finds it gone and
    # the next plan lists again: its row is gone
    new.unlink()
    store.scan(rewrite(5) | {str(new)})
    snap = store.scan(rewrite(6))
    assert f"agent:ops:{new.stem}" not in snap.by_key
    assert snap.rows == make_store(small_state).scan().rows
