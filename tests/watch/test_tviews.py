"""The joins' views: a counted transcript's read from the rollup's members, the others kept apart."""

from __future__ import annotations

import os
from pathlib import Path

from clawstats.core.health import HealthLog
from clawstats.watch.joins import Joins
from clawstats.watch.source import Source
from clawstats.watch.tail import Tail
from tests.conftest import make_store
from tests.core.lines import assistant, jsonl, stamp, usage, with_ids

CALLS = with_ids([assistant(use=usage(10, 5, cost=0.01), ts=stamp(i)) for i in range(3)])


def _src(tail: Tail) -> Source:
    return Source("agent:main:a", "main", None, tail.path)


def _tail(path: Path) -> Tail:
    path.write_bytes(jsonl(CALLS))
    tail = Tail(str(path))
    tail.poll(HealthLog())
    return tail


def test_a_counted_transcripts_view_is_kept_once(tmp_path: Path) -> None:
    joins, keys = Joins({}), set[str]()
    tail = _tail(tmp_path / "a.jsonl")
    joins.put_tail("main", tail.path, tail)
    assert joins.rollup.loose == {tail.path: joins.tviews[tail.path]}  # put, not counted yet
    joins.set_source("agent:main:a", None, _src(tail), keys)
    view = joins.tviews[tail.path]
    assert joins.rollup.loose == {} and joins.rollup.kept(tail.path) is view  # the member, no map entry
    assert dict(joins.tviews) == {tail.path: view} and joins.tails[tail.path] == ("main", tail)
    joins.set_source("agent:main:a", _src(tail), None, keys)  # no row reads it: not counted, still followed
    assert joins.tviews[tail.path] is view and joins.rollup.kept(tail.path) is None
    assert joins.rollup.loose == {tail.path: view} and len(joins.tviews) == 1
    joins.set_source("agent:main:a", None, _src(tail), keys)
    assert joins.rollup.loose == {} and joins.rollup.kept(tail.path) is view
    joins.put_tail("main", tail.path, None)  # gone: marked until the totals drop it
    assert tail.path not in joins.tviews and joins.rollup.loose == {tail.path: None}
    joins.count(tail.path)
    assert joins.rollup.loose == {} and joins.rollup.kept(tail.path) is None and len(joins.tviews) == 0


def test_a_repacked_view_replaces_the_member_and_an_agent_dropped_leaves_nothing(tmp_path: Path) -> None:
    joins, keys = Joins({}), set[str]()
    tail = _tail(tmp_path / "a.jsonl")
    tail.stats  # noqa: B018 (unpacked: being written to)
    joins.put_tail("main", tail.path, tail)
    joins.set_source("agent:main:a", None, _src(tail), keys)
    live = joins.tviews[tail.path]
    assert not isinstance(live.held, bytes)
    tail.pack()
    assert joins.repack(tail.path)
    packed = joins.tviews[tail.path]
    assert isinstance(packed.held, bytes) and joins.rollup.kept(tail.path) is packed and joins.rollup.loose == {}
    joins.set_source("agent:main:a", _src(tail), None, keys)
    joins.drop_tail(tail.path)
    assert joins.rollup.loose == {} and len(joins.tviews) == 0


def test_a_store_keeps_no_map_of_every_view(tmp_path: Path) -> None:
    sessions = tmp_path / "state/agents/main/sessions"
    sessions.mkdir(parents=True)
    for n in range(5):
        (sessions / f"0000000{n}-0000-4000-8000-000000000000.jsonl").write_bytes(jsonl(CALLS))
    store = make_store(tmp_path / "state")
    first = store.scan()
    joins = store._joins
    assert len(first.rows) == 5 and len(joins.tviews) == 5 and joins.rollup.loose == {}
    gone = sessions / "00000003-0000-4000-8000-000000000000.jsonl"
    os.unlink(gone)
    after = store.scan()
    assert len(after.rows) == 4 and len(joins.tviews) == 4 and joins.rollup.loose == {}
    assert abs(after.totals.total_cost - first.totals.total_cost * 4 / 5) < 1e-9
