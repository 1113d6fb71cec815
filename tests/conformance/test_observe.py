"""The suite's latency measure: a delta is timed from the newest store write before it, even when
the same file is written again before the client looks (a burst of SQLite commits)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conformance.observe import WriteClock


def _touch(path: Path, at_s: float) -> float:
    """Write ``path`` with mtime ``at_s``; the mtime as the clock reads it."""
    path.write_bytes(b"x")
    ns = int(at_s * 1e9)
    os.utime(path, ns=(ns, ns))
    return os.stat(path).st_mtime_ns / 1e9


def _wait_seen(clock: WriteClock, mtime_s: float) -> None:
    deadline = time.monotonic() + 30.0
    while mtime_s not in clock.times:
        assert time.monotonic() < deadline, "the clock never sampled the write"
        time.sleep(0.01)


def test_a_file_written_again_after_the_arrival_keeps_its_earlier_write(tmp_path: Path) -> None:
    wal = tmp_path / "agents" / "ops" / "agent" / "openclaw-agent.sqlite-wal"
    other = tmp_path / "agents" / "main" / "sessions" / "sessions.json"
    wal.parent.mkdir(parents=True)
    other.parent.mkdir(parents=True)
    arrival = 2_000_000_000.0
    _touch(other, arrival - 5.0)  # another agent's write, long before
    commit = _touch(wal, arrival - 0.024)  # the commit the delta reports
    clock = WriteClock(tmp_path, interval_s=0.001)
    clock.start()
    try:
        _wait_seen(clock, commit)
        _wait_seen(clock, _touch(wal, arrival + 0.001))  # the burst's next commit, before the client looks
        assert clock.last_before(arrival) == commit  # not the other file's, 5 s before
    finally:
        clock.stop()


def test_a_write_after_the_last_sample_is_seen_by_the_look_at_arrival(tmp_path: Path) -> None:
    index = tmp_path / "agents" / "main" / "sessions" / "sessions.json"
    index.parent.mkdir(parents=True)
    clock = WriteClock(tmp_path)  # never started: no history at all
    written = _touch(index, 1_900_000_000.0)
    assert clock.last_before(1_900_000_000.5) == written
    assert clock.last_before(1_899_999_999.0) is None
