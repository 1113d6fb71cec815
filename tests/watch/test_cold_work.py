"""The cold start's work, counted (never timed): what a first scan of many sessions pays per row.

The first publish builds every row once, enriches it once and sorts once; the rows are those the
patching path (the one every later scan takes) gives. Planning asks the file system once per
directory a sessionFile names, not once per row.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from clawstats.api.server import served_store
from clawstats.core.snapshot import Snapshot
from clawstats.settings import Settings
from clawstats.watch import cold, file_agent, publisher
from clawstats.watch.engine import open_store
from clawstats.watch.locate import is_transcript_name
from clawstats.watch.publisher import Publisher
from clawstats.watch.rows import RowTable
from clawstats.watch.split import split_map
from clawstats.watch.store import StatsStore
from clawstats.watch.tail import Tail
from tests.conftest import fork_refused, forked_and_killed, make_store
from tests.openclaw.attrib_data import ATTRIB_STATE

_encoder = msgspec.json.Encoder()


def _served(snap: Snapshot) -> tuple[bytes, bytes, bytes]:
    """What a reader sees: the rows in order, the rows by key, the totals (as JSON)."""
    by_key = {key: snap.by_key[key] for key in sorted(snap.by_key)}
    return _encoder.encode(snap.rows), _encoder.encode(by_key), _encoder.encode(snap.totals)


def _patched(self: Publisher, keys: set[str]) -> set[str]:
    return self._patch(keys)[0]


def _fixture_state(fixture: str, small_state: Path, tmp_path: Path) -> Path:
    """The real 2026.7.1 store, or a copy of the attribution one (cron jobs, sub-agents, archives)."""
    if fixture == "small":
        return small_state
    shutil.copytree(ATTRIB_STATE, tmp_path / "attrib")
    return tmp_path / "attrib"


@pytest.mark.parametrize("fixture", ["small", "attrib"])
def test_cold_publish_equals_the_patching_path(
    fixture: str, small_state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows, their order, views and totals of the bulk first publish are those of the patching
    path (lineage, tree cost and forecasts included: the attribution fixture has all three)."""
    state = _fixture_state(fixture, small_state, tmp_path)
    bulk_store = make_store(state)
    bulk = bulk_store.scan()
    with monkeypatch.context() as patch:
        patch.setattr(Publisher, "_build_all", _patched)
        patched_store = make_store(state)
        patched = patched_store.scan()
    assert len(bulk.rows) > 5
    assert _served(bulk) == _served(patched)
    assert bulk.changed == patched.changed and bulk.removed == patched.removed
    assert dict(bulk.views).keys() == dict(patched.views).keys()
    for key, view in bulk.views.items():
        assert view.buckets == patched.views[key].buckets and view.points == patched.views[key].points
    bulk_table, patched_table = bulk_store._publisher.table, patched_store._publisher.table
    assert bulk_table.unknown == patched_table.unknown
    assert list(bulk_table.rows) == list(patched_table.rows)  # same insertion order too
    assert bulk_store.rows_built == patched_store.rows_built == len(bulk.rows)


def test_cold_publish_builds_and_places_each_row_once(small_state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No row of a cold start is patched into the order after it is built (one sort for all);
    a later change still patches its own row only."""
    calls: Counter[str] = Counter()

    def counting(name: str, method: Callable[..., object]) -> Callable[..., object]:
        def wrapper(*args: object, **kwargs: object) -> object:
            calls[name] += 1
            return method(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(RowTable, "replace", counting("replace", RowTable.replace))
    monkeypatch.setattr(RowTable, "update", counting("update", RowTable.update))
    store = make_store(small_state)
    first = store.scan()
    assert store.rows_built == len(first.rows) and calls == Counter()
    ops = small_state / "agents/ops/sessions"
    path = str(next(p for p in ops.glob("*.jsonl") if ".trajectory." not in p.name))
    with open(path, "ab") as fh:
        fh.write(b'{"type":"custom","customType":"x","data":{},"id":"c0ffee01","parentId":null}\n')
    store.scan({path})
    assert calls["update"] == 1


def test_plan_asks_once_per_foreign_directory(small_state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows copied from another machine name a sessionFile under a directory that is not here:
    one look at that directory answers for every row (each row's own name is then found in the
    listing), as before one stat per row did."""
    looked: Counter[str] = Counter()
    isfile, isdir = os.path.isfile, os.path.isdir

    def counting_isfile(path: str) -> bool:
        looked["file " + os.path.dirname(path)] += 1
        return isfile(path)

    def counting_isdir(path: str) -> bool:
        looked["dir " + path] += 1
        return isdir(path)

    monkeypatch.setattr(os.path, "isfile", counting_isfile)
    monkeypatch.setattr(os.path, "isdir", counting_isdir)
    snap = make_store(small_state).scan()
    foreign = [key for key, value in looked.items() if "/home/operator/" in key]
    assert foreign and all(key.startswith("dir ") and looked[key] == 1 for key in foreign), looked
    assert all(row.total_cost is not None for row in snap.rows if not row.archived)


def _worker_store(state: Path, monkeypatch: pytest.MonkeyPatch) -> StatsStore:
    """A store whose cold read goes to two worker processes however small the store."""
    monkeypatch.setattr(cold, "PARALLEL_MIN_BYTES", 0)
    return open_store(Settings(state_dir=str(state), no_cache=True), {}, workers=2)


def test_worker_read_equals_the_in_process_read_and_makes_no_empty_tail(
    small_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transcripts read by the workers are adopted as read: no empty Tail is made for them first,
    and the rows are those of an in-process read."""
    made: list[str] = []

    class CountingTail(Tail):
        __slots__ = ()

        def __init__(self, path: str, *args: Any) -> None:
            made.append(path)
            super().__init__(path, *args)

    in_process = make_store(small_state).scan()
    monkeypatch.setattr(file_agent, "Tail", CountingTail)
    store = _worker_store(small_state, monkeypatch)
    read = store.scan()
    assert made == [] and len(store.tails) > 5
    for agent in store.agents.values():  # every tail read: no emptied table of them kept
        assert isinstance(agent, file_agent.FileAgent) and sys.getsizeof(agent._unread) == sys.getsizeof(set())
    assert _served(read) == _served(in_process)
    # a transcript that appears later is read in the scanning process, with a Tail of its own
    ops = small_state / "agents/ops/sessions"
    new = ops / "00000000-0000-4000-8000-0000000000aa.jsonl"
    shutil.copyfile(next(p for p in sorted(ops.glob("*.jsonl")) if ".trajectory." not in p.name), new)
    monkeypatch.setattr(cold, "PARALLEL_MIN_BYTES", 1 << 40)
    after = store.scan()
    assert made == [str(new)] and "agent:ops:00000000-0000-4000-8000-0000000000aa" in after.by_key


def test_listed_transcripts_are_read_while_the_store_plans(
    small_state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store read from nothing starts reading what its directories list before it plans; the
    plan's other files (a sessionFile elsewhere) are read in a second batch; the rows are those
    of an in-process read."""
    elsewhere = tmp_path / "elsewhere" / "moved.jsonl"
    elsewhere.parent.mkdir()
    ops = small_state / "agents/ops/sessions"
    template = next(p for p in sorted(ops.glob("*.jsonl")) if ".trajectory." not in p.name)
    shutil.copyfile(template, elsewhere)
    index_path = small_state / "agents/main/sessions/sessions.json"
    index = json.loads(index_path.read_text())
    index["agent:main:moved"] = {"sessionId": "moved", "updatedAt": 1795540200000, "sessionFile": str(elsewhere)}
    index_path.write_text(json.dumps(index))
    in_process = make_store(small_state).scan()
    asked: list[set[str]] = []
    started: list[frozenset[str]] = []
    real_init = cold.ColdRead.__init__

    def recording(self: cold.ColdRead, paths: list[str], *args: Any) -> None:
        real_init(self, paths, *args)
        asked.append(set(paths))
        started.append(self.paths)

    monkeypatch.setattr(cold.ColdRead, "__init__", recording)
    store = _worker_store(small_state, monkeypatch)
    read = store.scan()
    listed = {
        str(p)
        for agent in ("main", "ops")
        for p in (small_state / "agents" / agent / "sessions").iterdir()
        if is_transcript_name(p.name)
    }
    # the second batch is one file: read by the scan itself, as any single cold file is
    assert asked == [listed, {str(elsewhere)}] and started == [listed, frozenset()]
    assert _served(read) == _served(in_process)
    assert read.by_key["agent:main:moved"].total_cost == in_process.by_key["agent:main:moved"].total_cost


@pytest.mark.parametrize("workers", [1, 2])
def test_a_live_stores_session_file_is_the_tails_path_object(
    small_state: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """A live store's rows name their transcripts by absolute path in the sessions directory:
    that string is the tail's path, one object (~150 bytes a session), whoever read the file; a
    path spelled otherwise (``//``) is not taken for the listed one (it would be read twice)."""
    sessions = small_state / "agents/main/sessions"
    index = json.loads((sessions / "sessions.json").read_text())
    for row in index.values():
        if row.get("sessionFile"):
            row["sessionFile"] = str(sessions / Path(row["sessionFile"]).name)
    odd_key = next(k for k, r in index.items() if r.get("sessionFile"))
    index[odd_key]["sessionFile"] = str(sessions) + "//" + Path(index[odd_key]["sessionFile"]).name
    (sessions / "sessions.json").write_text(json.dumps(index))
    store = _worker_store(small_state, monkeypatch) if workers == 2 else make_store(small_state)
    snap = store.scan()
    agent = store.agents["main"]
    assert isinstance(agent, file_agent.FileAgent)
    shared = 0
    for key, row in agent.index.rows.items():
        src = agent.sources[key]
        if key != odd_key and row.sessionFile and src.stats_id is not None:
            assert src.stats_id is row.sessionFile and agent.tails[src.stats_id].path is row.sessionFile
            shared += 1
    assert shared >= 3
    assert agent.sources[odd_key].stats_id == os.path.join(str(sessions), Path(index[odd_key]["sessionFile"]).name)
    assert _served(snap) == _served(make_store(small_state).scan())


def test_the_server_reads_a_cold_store_in_worker_processes_as_the_cli_does(
    small_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve``'s first read fans out to one worker per core, as ``clawstats sessions`` does
    (in one process it took twice the CLI's time at 50,000 sessions); the rows are the same."""
    monkeypatch.setattr(cold, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    started: list[frozenset[str]] = []
    real_init = cold.ColdRead.__init__

    def recording(self: cold.ColdRead, paths: list[str], *args: Any) -> None:
        real_init(self, paths, *args)
        started.append(self.paths)

    monkeypatch.setattr(cold.ColdRead, "__init__", recording)
    store = served_store(Settings(state_dir=str(small_state), no_cache=True), {})
    snap = store.scan()
    assert started and len(started[0]) > 5  # the listed transcripts went to the workers
    assert _served(snap) == _served(make_store(small_state).scan())


def test_thousands_of_files_are_batched_by_count_from_sampled_sizes(
    small_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From ``SAMPLE_MIN_FILES`` listed transcripts on, the scanning process stats one in
    ``SAMPLE_EVERY`` (its estimate decides whether to fork), not each before the workers start;
    every listed file is still read by the workers, and the rows are those of an in-process read."""
    in_process = make_store(small_state).scan()
    monkeypatch.setattr(cold, "SAMPLE_MIN_FILES", 4)
    monkeypatch.setattr(cold, "SAMPLE_EVERY", 3)
    stat_ed: list[str] = []
    real_sizes = cold._sizes

    def recording(paths: list[str]) -> dict[str, int]:
        stat_ed.extend(paths)
        return real_sizes(paths)

    monkeypatch.setattr(cold, "_sizes", recording)
    monkeypatch.setattr(cold, "COUNTED_BATCHES_PER_WORKER", 64)  # more batches than files: one each
    handed: list[list[str]] = []
    real_pool = cold.fork_pool

    def pool(workers: int) -> Any:
        made = real_pool(workers)
        real_map = made.map

        def recording_map(fn: Any, groups: list[list[str]], *rest: Any) -> Any:
            handed.extend(groups)
            return real_map(fn, groups, *rest)

        made.map = recording_map  # type: ignore[method-assign]
        return made

    monkeypatch.setattr(cold, "fork_pool", pool)
    started: list[tuple[list[str], frozenset[str]]] = []
    real_init = cold.ColdRead.__init__

    def starting(self: cold.ColdRead, paths: list[str], *args: Any) -> None:
        real_init(self, paths, *args)
        started.append((list(paths), self.paths))

    monkeypatch.setattr(cold.ColdRead, "__init__", starting)
    store = _worker_store(small_state, monkeypatch)
    read = store.scan()
    listed, reading = started[0]
    assert len(listed) > 5 and reading == frozenset(listed)
    assert stat_ed == listed[::3]
    assert handed == [[path] for path in listed]  # 128 batches asked for, no empty one handed out
    assert _served(read) == _served(in_process)
    # an estimate under the threshold forks nothing: the scan reads them itself
    monkeypatch.setattr(cold, "PARALLEL_MIN_BYTES", 1 << 40)
    started.clear()
    alone = open_store(Settings(state_dir=str(small_state), no_cache=True), {}, workers=2).scan()
    assert started and started[0][1] == frozenset()
    assert _served(alone) == _served(in_process)


@pytest.mark.parametrize("fixture", ["small", "attrib"])
def test_rows_built_in_two_processes_equal_those_built_in_one(
    fixture: str, small_state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-shot read's cold start builds 60 % of its rows (and their forecasts) in a forked
    child: the served rows, order, views and totals are those built in one process, every row
    is counted built, and the forecast memo keeps what the one-process build keeps."""
    state = _fixture_state(fixture, small_state, tmp_path)
    alone = make_store(state)
    one = alone.scan()
    monkeypatch.setattr(publisher, "SPLIT_MIN_ROWS", 2)
    parent = os.getpid()
    here: list[str] = []
    real_foreseen = Publisher._foreseen

    def foreseen(self: Publisher, *args: Any) -> Any:
        if os.getpid() == parent:
            here.append(args[-1][0].key)
        return real_foreseen(self, *args)

    monkeypatch.setattr(Publisher, "_foreseen", foreseen)
    split = make_store(state)
    split.split_rows = True
    two = split.scan()
    assert _served(two) == _served(one)
    assert split.rows_built == alone.rows_built == len(two.by_key)
    assert 0 < len(here) < len(two.by_key)  # the rest came from the child
    assert set(split._enricher.memo) == set(alone._enricher.memo)
    assert _served(split.scan()) == _served(one)  # a later scan patches them as any


def test_split_map_computes_half_in_a_child_and_the_rest_here_when_it_fails() -> None:
    parent = os.getpid()
    here: list[int] = []

    def square(n: int) -> int:
        if os.getpid() == parent:
            here.append(n)
        return n * n

    decode = msgspec.msgpack.Decoder(list[int]).decode
    assert split_map(square, range(10), decode) == [n * n for n in range(10)]
    assert here == [0, 1, 2, 3, 4]

    def fails_in_the_child(n: int) -> int:
        if os.getpid() != parent:
            raise RuntimeError("a child's failure")
        return square(n)

    here.clear()
    assert split_map(fails_in_the_child, range(10), decode) == [n * n for n in range(10)]
    assert here == list(range(10))


def test_split_map_stops_its_child_when_this_process_fails(tmp_path: Path) -> None:
    """An error here (or an interrupt) does not wait for the child's share: the child is stopped
    (it would sleep for a minute, past the test's timeout, then leave a mark)."""
    parent = os.getpid()
    mark = tmp_path / "the child finished"

    def slow_there_failing_here(n: int) -> int:
        if os.getpid() != parent:
            time.sleep(60)
            mark.touch()
        if n == 1:
            raise KeyError(n)
        return n

    with pytest.raises(KeyError):
        split_map(slow_there_failing_here, range(4), msgspec.msgpack.Decoder(list[int]).decode)
    assert not mark.exists()


def test_split_map_computes_everything_here_when_no_child_can_be_forked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused fork (EAGAIN at a pids limit, ENOMEM) is no failure of the read: every item is
    computed here, ``meanwhile`` still runs once, and the pipe made for the child is closed."""

    def refused() -> int:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    fds_before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fork", refused)
    calls: list[int] = []
    decode = msgspec.msgpack.Decoder(list[int]).decode
    assert split_map(lambda n: n * n, range(10), decode, lambda: calls.append(1)) == [n * n for n in range(10)]
    assert calls == [1]
    assert len(os.listdir("/proc/self/fd")) == fds_before


@pytest.mark.parametrize("fork", [fork_refused, forked_and_killed], ids=["refused", "worker-killed"])
def test_a_cold_read_whose_workers_fail_reads_the_files_itself(
    small_state: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fork: Callable[[], int]
) -> None:
    """No worker process to be had, or one killed: the cold read is not a crash, the files no
    worker handed back are read in this process, and the rows are those of an in-process read."""
    in_process = open_store(Settings(state_dir=str(small_state), no_cache=True), {}).scan()
    store = _worker_store(small_state, monkeypatch)
    monkeypatch.setattr(os, "fork", fork)
    with caplog.at_level(logging.WARNING, logger="clawstats"):
        read = store.scan()
    assert "worker process" in caplog.text
    assert _served(read) == _served(in_process)
    assert not read.health.conditions
