"""What a row keeps on its key side: the maps of every row, pinned as counts and identities
(issue 17's memory at 50,000 sessions: each map of every row is ~37 bytes a row)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from clawstats.core.snapshot import ViewsByRow, usual_stats_id
from tests.conftest import OPS_TRANSCRIPT, SMALL_STATE, make_store
from tests.core.lines import assistant, usage

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
        for key in publisher.table.rows
        if (src := store._joins.sources[key]).stats_id != usual_stats_id(publisher.shapes, publisher.table.rows[key])
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
