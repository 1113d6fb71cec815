"""A SQLite session packed without its context segment, and folded again from its events when new
ones come: compared to the bit with a fresh read of every event."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from clawstats.core.transcript import TranscriptStats
from clawstats.watch import sqlite_cold
from clawstats.watch.sqlite_store import SqliteAgent
from clawstats.watch.store import StatsStore
from clawstats.watch.tail import Tail
from tests.conftest import make_store
from tests.core.lines import (
    append_events,
    assistant,
    sqlite_path,
    sqlite_state_with,
    stamp,
    usage,
    user,
    with_ids,
    writer,
)

Line = dict[str, Any]
SID = "s1"
STATS_ID = f"main/{SID}"
FIRST = with_ids(
    [
        user("first question " * 10, ts=stamp(0)),
        assistant(use=usage(1000, 50, cost=0.01), ts=stamp(1), content="x" * 400),
        user("second question " * 20, ts=stamp(2)),
        assistant(use=usage(1300, 60, cost=0.02), ts=stamp(3)),
    ]
)


def _agent(store: StatsStore) -> SqliteAgent:
    agent = store.agents["main"]
    assert isinstance(agent, SqliteAgent)
    return agent


def _tail(store: StatsStore) -> Tail:
    return _agent(store).tails[STATS_ID]


def _append(state: Path, lines: list[Line], bad_first: bool = False) -> None:
    with closing(writer(sqlite_path(state))) as db, db:
        if bad_first:
            top = db.execute("SELECT max(seq) FROM transcript_events WHERE session_id = ?", (SID,)).fetchone()[0]
            db.execute(
                "INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES (?, ?, '{not json', 1)",
                (SID, top + 1),
            )
        append_events(db, SID, lines)


def _fresh(state: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, dict[str, int]]:
    """A first read of every event, the segment kept: (the session's dump, the health counters)."""
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_cold, "REREAD_MAX_EVENTS", 0)
        store = make_store(state)
        store.scan()
        return _tail(store).dump(), dict(_agent(store).health.counters)


def _call(at: int, parent: str, cost: float, prompt: int = 1500) -> Line:
    return {"id": f"n{at}", "parentId": parent, **assistant(use=usage(prompt, 30, cost=cost), ts=stamp(at))}


COMPACTION = {
    "type": "compaction",
    "id": "k0",
    "parentId": "e0003",
    "timestamp": stamp(10),
    "firstKeptEntryId": "e0002",
    "summary": "what was said " * 8,
    "tokensBefore": 1360,
}


@pytest.mark.parametrize(
    ("lines", "bad_first"),
    [
        ([_call(10, "e0003", 0.5)], False),  # a plain call
        ([COMPACTION], False),  # a compaction: its estimate needs the segment read again
        ([COMPACTION, _call(11, "k0", 0.5, prompt=900)], False),
        ([{**user("edited", ts=stamp(10)), "id": "b0", "parentId": "e0001"}, _call(11, "b0", 0.5)], False),  # a branch
        ([_call(10, "e0003", 0.5)], True),  # a malformed event among the new ones
    ],
)
def test_new_events_after_a_segmentless_image_equal_a_fresh_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[Line], bad_first: bool
) -> None:
    state = sqlite_state_with(tmp_path, {SID: FIRST})
    store = make_store(state)
    store.scan()
    tail = _tail(store)
    assert tail.packed and TranscriptStats.load(tail.dump()).seg_chars is not None
    rereads, generation = Tail.rereads, tail.generation
    _append(state, lines, bad_first)
    store.scan()
    assert Tail.rereads == rereads + 1 and tail.generation == generation
    expected, counters = _fresh(state, monkeypatch)
    assert tail.stats.dump() == expected
    assert _agent(store).health.counters == counters  # nothing counted twice


def test_a_malformed_event_read_before_is_not_counted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = sqlite_state_with(tmp_path, {SID: FIRST[:2]})
    _append(state, FIRST[2:], bad_first=True)
    store = make_store(state)
    store.scan()
    assert _agent(store).health.counters.get("malformed") == 1
    assert TranscriptStats.load(_tail(store).dump()).seg_chars is not None
    _append(state, [_call(10, "e0003", 0.5)])
    store.scan()
    expected, counters = _fresh(state, monkeypatch)
    assert _tail(store).stats.dump() == expected and _agent(store).health.counters == counters
    assert counters.get("malformed") == 1


def test_a_reset_with_no_call_since_reads_the_same_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [*FIRST, {"type": "reset", "id": "r0", "parentId": "e0003", "timestamp": stamp(5)}]
    lines.append({**user("a fresh start " * 40, ts=stamp(6)), "id": "u0", "parentId": "r0"})
    state = sqlite_state_with(tmp_path, {SID: lines})
    store = make_store(state)
    row = store.scan().by_key[f"agent:main:{SID}"]
    tail = _tail(store)
    assert TranscriptStats.load(tail.dump()).seg_chars is not None
    expected, _ = _fresh(state, monkeypatch)
    assert tail.current().context() == TranscriptStats.load(expected).context()
    assert tail.current().context()[1] == "estimate"
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_cold, "REREAD_MAX_EVENTS", 0)
        assert make_store(state).scan().by_key[f"agent:main:{SID}"] == row


def test_a_session_of_many_events_keeps_its_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_cold, "REREAD_MAX_EVENTS", len(FIRST) - 1)
    state = sqlite_state_with(tmp_path, {SID: FIRST})
    store = make_store(state)
    store.scan()
    assert TranscriptStats.load(_tail(store).dump()).seg_chars is None
    rereads = Tail.rereads
    _append(state, [_call(10, "e0003", 0.5)])
    store.scan()
    assert Tail.rereads == rereads


def test_an_event_deleted_below_the_cursor_reads_the_session_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = sqlite_state_with(tmp_path, {SID: FIRST})
    store = make_store(state)
    store.scan()
    tail = _tail(store)
    generation = tail.generation
    with closing(writer(sqlite_path(state))) as db, db:
        db.execute("DELETE FROM transcript_events WHERE session_id = ? AND seq = 2", (SID,))
        append_events(db, SID, [_call(10, "e0003", 0.5)])
    served = store.scan()
    assert tail.generation > generation
    assert served.totals == make_store(state).scan().totals


def test_only_malformed_new_events_leave_the_image_as_it_was(tmp_path: Path) -> None:
    state = sqlite_state_with(tmp_path, {SID: FIRST})
    store = make_store(state)
    before = store.scan().by_key[f"agent:main:{SID}"]
    image = _tail(store).dump()
    _append(state, [], bad_first=True)
    after = store.scan().by_key[f"agent:main:{SID}"]
    assert _agent(store).health.counters.get("malformed") == 1
    assert after.total_cost == before.total_cost and _tail(store).stats.dump() == image


def test_a_session_emptied_then_written_again_reads_its_new_events(tmp_path: Path) -> None:
    # Every event deleted: the cursor starts over at 0 and its empty statistics are packed. They
    # must keep their (empty) segment: at offset 0 no rebuild runs before new events are folded.
    state = sqlite_state_with(tmp_path, {SID: FIRST})
    store = make_store(state)
    store.scan()
    with closing(writer(sqlite_path(state))) as db, db:
        db.execute("DELETE FROM transcript_events WHERE session_id = ?", (SID,))
    store.scan()
    assert _tail(store).offset == 0
    with closing(writer(sqlite_path(state))) as db, db:
        append_events(db, SID, FIRST)
    served = store.scan()
    assert served.by_key[f"agent:main:{SID}"] == make_store(state).scan().by_key[f"agent:main:{SID}"]
