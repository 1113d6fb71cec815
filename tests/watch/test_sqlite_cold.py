"""A SQLite store's first read in worker processes (``watch/sqlite_cold.py``) against the same
read in one process: the same rows, totals and skips, and the cursors go on from there."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path

import pytest

from clawstats.core.records import Line
from clawstats.core.snapshot import Snapshot
from clawstats.core.transcript import TranscriptStats
from clawstats.settings import Settings
from clawstats.watch import sqlite_cold, sqlite_events
from clawstats.watch.engine import open_store
from clawstats.watch.sqlite_store import SqliteAgent
from clawstats.watch.store import StatsStore
from clawstats.watch.tail import FileId
from tests.conftest import REAL_SQLITE, fork_refused, forked_and_killed
from tests.core.lines import append_events, current_session_id, live_call, octet_length

KEY = "agent:ops:incident-long"


def _store(state: Path, workers: int) -> StatsStore:
    return open_store(Settings(state_dir=str(state), no_cache=True), {}, workers=workers)


def _adopted(store: StatsStore) -> int:
    return sum(a.adopted for a in store.agents.values() if isinstance(a, SqliteAgent))


def _same(a: Snapshot, b: Snapshot) -> None:
    assert a.rows == b.rows
    assert a.totals == b.totals
    assert a.health.counters == b.health.counters and a.health.by_file == b.health.by_file


def test_a_first_read_in_workers_equals_one_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_events, "PARALLEL_MIN_EVENTS", 0)  # the real fixture is small
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    with sqlite3.connect(state / "agents/ops/agent/openclaw-agent.sqlite") as db:
        db.create_function("octet_length", 1, octet_length)
        sid = current_session_id(db, KEY)
        top = db.execute("SELECT max(seq) FROM transcript_events WHERE session_id = ?", (sid,)).fetchone()[0]
        db.execute(
            "INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES (?, ?, '{not json', 1)",
            (sid, top + 1),
        )
        # A compressed event as the gateway writes one (its navigation record), whose zstd is garbage.
        db.execute(
            "INSERT INTO transcript_events (session_id, seq, event_zstd, event_utf8_bytes, navigation_json, created_at)"
            " SELECT ?, ?, X'6E6F74207A737464', event_utf8_bytes, navigation_json, 1 FROM transcript_events"
            " WHERE event_zstd IS NOT NULL LIMIT 1",
            (sid, top + 2),
        )
        append_events(db, sid, [live_call("w1", 0.5)])
    serial_store, parallel_store = _store(state, 1), _store(state, 2)
    serial, parallel = serial_store.scan(), parallel_store.scan()
    assert _adopted(serial_store) == 0
    sessions = sum(len(a.below) for a in parallel_store.agents.values() if isinstance(a, SqliteAgent))
    assert _adopted(parallel_store) == sessions > 5  # every session read by a worker
    assert parallel.health.counters.get("malformed") == 1 and parallel.health.counters.get("corruptEvent") == 1
    _same(parallel, serial)
    assert parallel.by_key[KEY].context_tokens == 20000
    with sqlite3.connect(state / "agents/ops/agent/openclaw-agent.sqlite") as db:
        db.create_function("octet_length", 1, octet_length)
        append_events(db, sid, [live_call("w2", 0.25)])
    later = parallel_store.scan()
    _same(later, serial_store.scan())  # the adopted cursors go on from the first read
    assert later.by_key[KEY].total_cost == pytest.approx(parallel.by_key[KEY].total_cost + 0.25)


def _ops_copy(tmp_path: Path) -> Path:
    """A copy of the real ops database: no reader may leave a file beside the bundled one."""
    db = tmp_path / "openclaw-agent.sqlite"
    shutil.copyfile(REAL_SQLITE / "state/agents/ops/agent/openclaw-agent.sqlite", db)
    return db


def _counted_folds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of lines of each ``TranscriptStats.fold`` call from now on."""
    folds: list[int] = []
    real_fold = TranscriptStats.fold

    def counting(self: TranscriptStats, lines: Sequence[Line]) -> None:
        folds.append(len(lines))
        real_fold(self, lines)

    monkeypatch.setattr(TranscriptStats, "fold", counting)
    return folds


def test_a_worker_folds_each_sessions_events_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One fold per session, not one per event (a fold's set-up per call was ~a tenth of the
    work); the images are those of the per-event read (the equality test above)."""
    db = _ops_copy(tmp_path)
    with closing(sqlite3.connect(db)) as con:
        newest = con.execute(
            "SELECT session_id, max(seq), count(*) FROM transcript_events GROUP BY session_id"
        ).fetchall()
    folds = _counted_folds(monkeypatch)
    images = sqlite_cold._read_batch(str(db), [(sid, top) for sid, top, _ in newest], FileId.of(os.stat(db)))
    assert len(images) == len(folds) == len(newest) > 1
    assert sum(folds) == sum(count for _, _, count in newest) > len(newest)


def test_a_worker_folds_a_long_sessions_events_a_bounded_number_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoded event holds its bytes until folded: a worker folds at most ``FOLD_EVENTS`` at a
    time (a session of a million events is not held whole), and the images are the same."""
    db = _ops_copy(tmp_path)
    with closing(sqlite3.connect(db)) as con:
        newest = con.execute("SELECT session_id, max(seq) FROM transcript_events GROUP BY session_id").fetchall()
    sessions, db_id = [(sid, top) for sid, top in newest], FileId.of(os.stat(db))
    whole = sqlite_cold._read_batch(str(db), sessions, db_id)
    folds = _counted_folds(monkeypatch)
    monkeypatch.setattr(sqlite_cold, "FOLD_EVENTS", 3)
    assert sqlite_cold._read_batch(str(db), sessions, db_id) == whole
    assert max(folds) == 3 and len(folds) > len(sessions)


@pytest.mark.parametrize("fork", [fork_refused, forked_and_killed], ids=["refused", "worker-killed"])
def test_a_first_read_whose_workers_fail_reads_the_sessions_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fork: Callable[[], int]
) -> None:
    monkeypatch.setattr(sqlite_events, "PARALLEL_MIN_EVENTS", 0)  # the real fixture is small
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    alone = _store(state, 1).scan()
    store = _store(state, 2)
    monkeypatch.setattr(os, "fork", fork)
    with caplog.at_level(logging.WARNING, logger="clawstats"):
        read = store.scan()
    assert "worker processes failed" in caplog.text
    assert _adopted(store) == 0
    _same(read, alone)
    assert not read.health.conditions


def test_each_batch_is_adopted_as_it_comes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent adopts a worker's batch while the others are still being read, not after the
    last one (both cores then idled but one)."""
    monkeypatch.setattr(sqlite_events, "PARALLEL_MIN_EVENTS", 0)  # the real fixture is small
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    seen: list[str] = []
    real_fork_pool = sqlite_cold.fork_pool

    class Pool:
        """The real pool, its batches handed back one at a time and noted."""

        def __init__(self, workers: int) -> None:
            self.pool = real_fork_pool(workers)

        def __enter__(self) -> Pool:
            return self

        def __exit__(self, *exc: object) -> None:
            self.pool.shutdown()

        def map(self, fn: Callable[..., object], *args: Sequence[object]) -> object:
            for result in self.pool.map(fn, *args):
                seen.append("batch")
                yield result

    real_adopt = sqlite_events.adopt

    def adopt(*args: object, **kwargs: object) -> object:
        seen.append("adopt")
        return real_adopt(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_cold, "fork_pool", Pool)
    monkeypatch.setattr(sqlite_events, "adopt", adopt)
    _store(state, workers=2).scan()
    assert seen.count("batch") >= 2 and "adopt" in seen
    assert seen.index("adopt") < seen.index("batch", 1)  # the first batch adopted before the second came
