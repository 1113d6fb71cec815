"""What a row keeps on its key side: the maps of every row, pinned as counts and identities
(issue 17's memory at 50,000 sessions: each map of every row is ~37 bytes a row)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import msgspec

from clawstats.core.snapshot import Snapshot, ViewsByRow, usual_stats_id
from clawstats.watch.source import AgentSources
from clawstats.watch.sqlite_store import SqliteAgent
from clawstats.watch.store import StatsStore
from tests.conftest import OPS_TRANSCRIPT, REAL_SQLITE, SMALL_STATE, make_store
from tests.core.lines import LIVE_MS, assistant, current_session_id, usage
from tests.core.lines import writer as schema_writer

COPIES = 12


def _state(tmp_path: Path) -> Path:
    """The real small state dir plus copies of its ops transcript, each with its row."""
    state = tmp_path / "state"
    shutil.copytree(SMALL_STATE, state)
    sessions = state / "agents/ops/sessions"
    index = json.loads((sessions / "sessions.json").read_text())
    name = Path(OPS_TRANSCRIPT).name
    template = next(row for row in index.values() if str(row.get("sessionFile", "")).endswith(name))
    for n in range(COPIES):
        sid = f"00000000-0000-4000-8000-{n:012d}"
        shutil.copyfile(state / OPS_TRANSCRIPT, sessions / f"{sid}.jsonl")
        index[f"agent:ops:copy-{n}"] = {**template, "sessionId": sid, "sessionFile": str(sessions / f"{sid}.jsonl")}
    _write_index(state, index)
    return state


def _index(state: Path) -> dict[str, dict[str, object]]:
    loaded: dict[str, dict[str, object]] = json.loads((state / "agents/ops/sessions/sessions.json").read_text())
    return loaded


def _write_index(state: Path, index: dict[str, dict[str, object]]) -> None:
    (state / "agents/ops/sessions/sessions.json").write_text(json.dumps(index))


def _append(path: Path) -> None:
    line = assistant(ts="2026-11-24T17:09:00.000Z", use=usage(10, 1, cost=0.5))
    with path.open("ab") as fh:
        fh.write(json.dumps({**line, "id": "feedf00d", "parentId": None}).encode() + b"\n")


def test_a_snapshot_reads_each_rows_view_through_its_rows_and_counted_transcripts(tmp_path: Path) -> None:
    """No map of every row's view: a snapshot keeps only the rows reading another transcript
    than their agent's usual one (an archive, a sessionFile elsewhere), and its views are the
    very objects the joins hold and the totals count."""
    store = make_store(_state(tmp_path))
    snap = store.scan()
    publisher = store._publisher
    assert isinstance(snap.views, ViewsByRow)
    unusual = {
        key: src.stats_id
        for key, row in publisher.table.rows.items()
        if (src := store._joins.sources[key]).stats_id != usual_stats_id(publisher.shapes, row.agent_id, row.session_id)
    }
    assert publisher._unusual == unusual and len(unusual) < len(snap.rows) // 4
    assert dict(snap.views).keys() == dict(publisher.views).keys() and len(snap.views) >= COPIES
    assert all(snap.views[key] is view for key, view in publisher.views.items())
    counted = {id(view) for _agent, view in snap.transcripts}
    assert all(id(view) in counted for view in snap.views.values())


def test_a_snapshot_held_keeps_its_views_while_later_scans_move_a_row(tmp_path: Path) -> None:
    """A reader holding a snapshot sees its views as they were, while the next scans append to a
    transcript, move a row to another transcript (it becomes unusual) and back (usual again)."""
    state = _state(tmp_path)
    sessions = state / "agents/ops/sessions"
    store = make_store(state)
    first = store.scan()
    key, other = "agent:ops:copy-3", "agent:ops:copy-4"
    path = sessions / "00000000-0000-4000-8000-000000000003.jsonl"
    before = first.views[key]
    _append(path)
    second = store.scan({str(path)})
    assert first.views[key] is before and second.views[key] is not before
    assert second.views[key] is store._joins.tviews[str(path)] and second.views[key].points == before.points + 1
    index = _index(state)
    moved = sessions / "moved.jsonl"
    shutil.copyfile(state / OPS_TRANSCRIPT, moved)
    index[key] = {**index[key], "sessionFile": str(moved)}
    _write_index(state, index)
    third = store.scan()
    assert store._publisher._unusual[key] == str(moved)
    assert third.views[key] is store._joins.tviews[str(moved)] and third.views[key] is not second.views[key]
    assert second.views[key] is store._joins.tviews[str(path)]  # (the old transcript, now an orphan)
    assert first.views[key] is before
    index[key] = {**index[key], "sessionFile": str(path)}
    _write_index(state, index)
    fourth = store.scan()
    assert key not in store._publisher._unusual
    assert fourth.views[key] is store._joins.tviews[str(path)]
    assert third.views[key] is store._joins.tviews[str(moved)]  # the held snapshot's own record
    assert first.views[other] is fourth.views[other]  # (a row nothing moved)


def _as_fresh(snap: Snapshot, state: Path) -> None:
    """The rows and totals a store following the changes gives are those of a cold read."""
    fresh = make_store(state).scan()
    assert [msgspec.json.encode(row) for row in snap.rows] == [msgspec.json.encode(row) for row in fresh.rows]
    assert msgspec.json.encode(snap.totals) == msgspec.json.encode(fresh.totals)


def _readers(store: StatsStore, path: Path) -> set[str]:
    return set(store._joins.readers(str(path)))


def test_the_joins_read_sources_through_the_agents_and_take_the_old_one_they_tell(tmp_path: Path) -> None:
    """No map of every row's source beside the agents': a row moved to a transcript another row
    reads (two readers, counted once), its own left to an orphan, then the other row gone; the
    readers follow the old sources the agent tells, and rows and totals stay a cold read's."""
    state = _state(tmp_path)
    sessions = state / "agents/ops/sessions"
    store = make_store(state)
    store.scan()
    joins = store._joins
    assert isinstance(joins.sources, AgentSources)
    maps = {name for name, value in vars(joins).items() if type(value) is dict}
    assert maps == {"refs", "archives", "owners"}  # (the views: read from the rollup's members, watch/tviews.py)
    assert all(joins.sources[key] == store.agents["ops"].sources[key] for key in store.agents["ops"].sources)
    five, six = (sessions / f"00000000-0000-4000-8000-{n:012d}.jsonl" for n in (5, 6))
    index = _index(state)
    index["agent:ops:copy-5"] = {**index["agent:ops:copy-5"], "sessionFile": str(six)}
    _write_index(state, index)
    snap = store.scan()
    orphan = "agent:ops:00000000-0000-4000-8000-000000000005"
    assert _readers(store, six) == {"agent:ops:copy-5", "agent:ops:copy-6"} and _readers(store, five) == {orphan}
    assert joins.sources["agent:ops:copy-5"].stats_id == str(six) and joins.sources[orphan].stats_id == str(five)
    _as_fresh(snap, state)
    del index["agent:ops:copy-6"]
    _write_index(state, index)
    snap = store.scan()
    assert _readers(store, six) == {"agent:ops:copy-5"} and "agent:ops:copy-6" not in joins.sources
    assert snap.views["agent:ops:copy-5"] is joins.tviews[str(six)]
    _as_fresh(snap, state)


def test_a_sqlite_node_moved_to_another_session_is_taken_out_of_its_old_transcript(tmp_path: Path) -> None:
    """A SQLite node whose current session becomes another node's: the agent tells the store its
    old source (read through its nodes), the old session's cursor loses its reader."""
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    database = state / "agents/ops/agent/openclaw-agent.sqlite"
    store = make_store(state)
    store.scan()
    agent = store.agents["ops"]
    assert isinstance(agent, SqliteAgent)
    keys = [key for key, node in agent.nodes.items() if node.row is not None]
    moving, other = keys[0], keys[1]
    with schema_writer(database) as db:
        target = current_session_id(db, other)
        db.execute(
            "UPDATE session_nodes SET current_session_id = ?, updated_at = ? WHERE session_key = ?",
            (target, LIVE_MS, moving),
        )
    old = store._joins.sources[moving].stats_id
    assert old is not None and moving in store._joins.readers(old)
    snap = store.scan()
    new = store._joins.sources[moving].stats_id
    assert new is not None and new != old and moving not in store._joins.readers(old)
    assert set(store._joins.readers(new)) == {moving, other}
    _as_fresh(snap, state)


def test_a_file_agent_keeps_a_source_only_for_rows_off_their_usual_transcript(tmp_path: Path) -> None:
    """A row reading its ``sessionFile`` (else ``<sessionId>.jsonl``) has no ``Source`` kept: it
    is made from the plan's index row when asked; the others are kept. A reload plans the new
    rows while the old plan still reads the old ones (the old source the store is told)."""
    state = _state(tmp_path)
    store = make_store(state)
    store.scan()
    agent = store.agents["ops"]
    plan = agent.sources
    usual = [key for key in plan.rows if key not in plan.odd]
    assert len(usual) >= COPIES and all(plan[key].stats_id == plan.rows[key].sessionFile for key in usual)
    assert all(src.row is None or src.stats_id != plan.usual(src.row) for src in plan.odd.values())
    assert set(plan) == set(plan.rows) | set(plan.odd)
    index = _index(state)
    index["agent:ops:copy-2"] = {**index["agent:ops:copy-2"], "updatedAt": 5}
    _write_index(state, index)
    planned = agent.rows_planned
    before = plan["agent:ops:copy-2"]
    snap = store.scan()
    assert agent.rows_planned == planned + 1 and snap.changed == {"agent:ops:copy-2"}  # the one changed row
    assert agent.sources is not plan and agent.sources.rows is agent.index.rows
    assert plan["agent:ops:copy-2"] == before and agent.sources["agent:ops:copy-2"].row is not before.row
    _as_fresh(snap, state)


def test_a_key_two_agents_name_stays_while_one_of_them_still_names_it(tmp_path: Path) -> None:
    """``main``'s sessions.json names a key of ``ops`` (a copied row): the row is ``ops``'s (the
    agent its key names). Once ``main`` drops it, ``ops`` still has it: the row stays, as a cold
    read gives (the joins kept one source per key, the last agent's: dropping it from one agent
    took the row away while the other still named it)."""
    state = tmp_path / "state"
    shutil.copytree(SMALL_STATE, state)
    ops_index = json.loads((state / "agents/ops/sessions/sessions.json").read_text())
    main_path = state / "agents/main/sessions/sessions.json"
    main_index = json.loads(main_path.read_text())
    key = next(iter(ops_index))
    main_path.write_text(json.dumps({**main_index, key: ops_index[key]}))
    store = make_store(state)
    first = store.scan()
    assert first.by_key[key].agent_id == "ops"
    _as_fresh(first, state)
    main_path.write_text(json.dumps(main_index))
    snap = store.scan()
    assert key in snap.by_key and len(snap.rows) == len(first.rows)
    _as_fresh(snap, state)


def _readers_match_sources(store: StatsStore) -> None:
    """Every transcript's readers (archives read by their own rows included) are the rows whose
    source reads it, and a tail holds them unless it has none."""
    joins = store._joins
    by_stats: dict[str, set[str]] = {}
    for key, src in joins.sources.items():
        if src.stats_id is not None:
            by_stats.setdefault(src.stats_id, set()).add(key)
    for stats_id, tail in store.tails.items():
        assert set(joins.readers(stats_id)) == by_stats.get(stats_id, set()), stats_id
        assert stats_id not in joins.refs and (tail.readers is None) == (stats_id not in by_stats)
    assert any(".reset." in stats_id for stats_id in by_stats)  # (an archive among them)


def test_a_transcripts_readers_are_its_tails_and_a_map_holds_only_those_of_none_read(tmp_path: Path) -> None:
    """No map of every transcript's readers: a read transcript's are its tail's (the key, or a
    tuple when two rows read it), taken from the tail when the file goes and put on the new one
    when it comes back (the joins' map keeps only those of a stats id without a tail)."""
    state = _state(tmp_path)
    sessions = state / "agents/ops/sessions"
    store = make_store(state)
    store.scan()
    _readers_match_sources(store)
    joins = store._joins
    five, six = (sessions / f"00000000-0000-4000-8000-{n:012d}.jsonl" for n in (5, 6))
    assert not joins.refs and store.tails[str(six)].readers == "agent:ops:copy-6"
    assert sys.getsizeof(joins.refs) == sys.getsizeof({})  # (every transcript passed through it: its table made again)
    index = _index(state)
    index["agent:ops:copy-5"] = {**index["agent:ops:copy-5"], "sessionFile": str(six)}
    _write_index(state, index)
    store.scan()
    _readers_match_sources(store)
    assert set(store.tails[str(six)].readers or ()) == {"agent:ops:copy-5", "agent:ops:copy-6"}
    assert not joins.refs
    later = sessions / "00000000-0000-4000-8000-000000000099.jsonl"
    index["agent:ops:copy-7"] = {**index["agent:ops:copy-7"], "sessionId": later.stem, "sessionFile": str(later)}
    _write_index(state, index)
    store.scan()
    _readers_match_sources(store)
    assert joins.sources["agent:ops:copy-7"].stats_id is None and not joins.refs  # (no transcript: none read)
    shutil.copyfile(state / OPS_TRANSCRIPT, later)
    store.scan()
    _readers_match_sources(store)
    assert not joins.refs and store.tails[str(later)].readers == "agent:ops:copy-7"
    assert joins.rollup.member(str(later)) is not None
    later.unlink()
    store.scan()
    _readers_match_sources(store)
    assert not joins.refs and str(later) not in store.tails and joins.rollup.member(str(later)) is None
    shutil.copyfile(state / OPS_TRANSCRIPT, later)
    _append(later)
    store.scan()
    _readers_match_sources(store)
    assert not joins.refs and store.tails[str(later)].readers == "agent:ops:copy-7"
    del index["agent:ops:copy-7"]
    _write_index(state, index)
    store.scan()
    _readers_match_sources(store)
    orphan = "agent:ops:00000000-0000-4000-8000-000000000099"  # (its row gone, the transcript is an orphan)
    assert not joins.refs and store.tails[str(later)].readers == orphan and set(joins.readers(str(later))) == {orphan}
