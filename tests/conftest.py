"""Shared fixtures: the bundled real OpenClaw data, copied into tmp_path when a test writes."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clawstats.core.snapshot import Snapshot
from clawstats.core.timeshift import latest_ms, shift_bytes, shift_name
from clawstats.settings import Settings
from clawstats.watch.engine import open_store
from clawstats.watch.store import StatsStore
from tests.servers import LiveServer, start_server, stop_server

DATA = Path(__file__).parent / "data"
REAL_SMALL = DATA / "openclaw-real-small"
REAL_SQLITE = DATA / "openclaw-real-sqlite"
#: The real 2026.7.1 state ships inside the package (the demo serves it); its captures stay here.
SMALL_STATE = Path(__file__).parent.parent / "clawstats" / "demo_data" / "openclaw-real-small" / "state"
OPS_TRANSCRIPT = "agents/ops/sessions/d5c19bcf-981c-460f-9bff-7519bb38fe72.jsonl"


if os.environ.get("FAKETIME"):
    # Under Debian's libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1 (needed, or every
    # timed lock wait blocks for the faked year), time.sleep's absolute clock_nanosleep fails
    # with EINVAL. A timed wait on an event that is never set sleeps the same way and works.
    _never = threading.Event()

    def _sleep(seconds: float) -> None:
        if seconds > 0:
            _never.wait(seconds)

    time.sleep = _sleep

#: Modules whose answers depend on the wall clock (ages, active windows, per-session metric series,
#: UTC days, the demo's live replay). `make test` runs them a second time with the clock a year
#: ahead (Debian's faketime), so none of them can pass only on the day its data was written.
CLOCK_MODULES = {
    "tests/core/test_timeshift.py",
    "tests/test_cli.py",
    "tests/api/test_live.py",
    "tests/api/test_routes.py",
    "tests/test_otlp.py",
    "tests/test_fleet.py",
    "tests/test_alerts.py",
    "tests/watch/test_compaction.py",
    "tests/watch/test_sqlite_real.py",
    "tests/api/test_attribution_api.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    root = Path(__file__).parent.parent
    for item in items:
        if item.path.relative_to(root).as_posix() in CLOCK_MODULES:
            item.add_marker(pytest.mark.clock)


def _listing(roots: tuple[Path, ...]) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for root in roots for p in root.rglob("*")}


@pytest.fixture(scope="session", autouse=True)
def bundled_data_untouched() -> Iterator[None]:
    """No test (and no code under test) creates or changes a file in the bundled real data: a
    reader that did (SQLite's -wal/-shm) once left its files in tests/data."""
    roots = (DATA, SMALL_STATE.parent)
    before = _listing(roots)
    yield
    after = _listing(roots)
    changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    assert not changed, f"the test run changed bundled data: {changed[:10]}"


def capture(fixture: Path, name: str) -> Any:
    return json.loads((fixture / "captures" / name).read_text())


def make_store(state_dir: Path, **settings: Any) -> StatsStore:
    settings.setdefault("no_cache", True)
    return open_store(Settings(state_dir=str(state_dir), **settings), {})


def scan(state_dir: Path, **settings: Any) -> Snapshot:
    return make_store(state_dir, **settings).scan()


@pytest.fixture
def small_state(tmp_path: Path) -> Path:
    """A writable copy of the real 2026.7.1 file-store state dir."""
    dest = tmp_path / "state"
    shutil.copytree(SMALL_STATE, dest)
    return dest


def shift_to_now(root: Path) -> int:
    """Move every timestamp under ``root`` (a file-store state dir) so its latest is now; the offset (ms).

    Tests that need recent activity (active windows, per-session metric series) make it this
    way instead of depending on the day the suite runs.
    """
    files = [p for p in root.rglob("*") if p.is_file() and (p.suffix == ".json" or ".jsonl" in p.name)]
    latest = max(filter(None, (latest_ms(p.read_bytes()) for p in files)))
    offset_ms = int(time.time() * 1000) - latest
    for path in files:
        path.write_bytes(shift_bytes(path.read_bytes(), offset_ms))
        moved = shift_name(path.name, offset_ms)
        if moved != path.name:
            path.rename(path.with_name(moved))
    return offset_ms


@pytest.fixture
def recent_small_state(small_state: Path) -> Path:
    """The real 2026.7.1 state with its times moved so that its latest write is now."""
    shift_to_now(small_state)
    return small_state


@pytest.fixture
def sqlite_state(tmp_path: Path) -> Path:
    """A writable copy of the real 2026.9.6 SQLite state dir."""
    dest = tmp_path / "sqlite-state"
    shutil.copytree(REAL_SQLITE / "state", dest)
    return dest


@pytest.fixture
def live_server(recent_small_state: Path) -> Iterator[tuple[LiveServer, Path]]:
    state = recent_small_state
    server = start_server(["serve", "--state-dir", str(state), "--no-cache", "--poll-interval-s", "0.5"])
    try:
        yield server, state
    finally:
        stop_server(server)


def fork_refused() -> int:
    """``os.fork`` as the kernel answers at a pids limit (``fork(2)``: EAGAIN)."""
    raise OSError(errno.EAGAIN, "Resource temporarily unavailable")


def forked_and_killed() -> int:
    """``os.fork`` whose child is killed at once (the OOM killer's choice of a worker)."""
    pid = _real_fork()
    if pid == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return pid


_real_fork = os.fork
