"""Reading a store the reader may not write, and never changing one it may: both layouts, as a
non-root user (``setpriv`` to uid/gid 65534) on a read-only directory owned by someone else, and
as the owner; with OpenClaw stopped and with a writer holding the SQLite database open. Every
path's size, mtime, mode and bytes are compared before and after."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest

from tests.conftest import REAL_SQLITE, SMALL_STATE, make_store
from tests.core.lines import LIVE_MS, append_events, current_session_id, live_call
from tests.core.lines import writer as schema_writer
from tests.servers import served_cost, start_server, stop_server, wait_served_cost

QUICK = "agent=ops&q=quick"

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
OPS_DB = "agents/ops/agent/openclaw-agent.sqlite"
LAYOUTS = {"file": SMALL_STATE, "sqlite": REAL_SQLITE / "state"}
ROOT = Path(__file__).parent.parent.parent

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root (CI runs as root)")


def _tree(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every path under ``root``: size, mtime (ns), mode and a digest of its bytes."""
    found: dict[str, tuple[int, int, int, str]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        found[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns, st.st_mode, digest)
    return found


def _stopped(root: Path) -> Path:
    """``root``, checked to be a store no writer has open: no ``-wal``/``-shm`` beside a database."""
    assert not [p for p in root.rglob("*") if p.name.endswith(("-wal", "-shm"))], "the fixture holds -wal/-shm"
    return root


def _read_only(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is private to root)."""
    where = Path(tempfile.mkdtemp(prefix="clawstats-ro-"))
    where.chmod(0o755)
    cache = where / "cache"
    cache.mkdir()
    os.chown(cache, NOBODY, NOBODY)
    try:
        yield where
    finally:
        for path in [where, *where.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(where)


def _sessions(state: Path, cache: Path | None, user: list[str]) -> dict[str, Any]:
    store = ["--cache-dir", str(cache)] if cache else ["--no-cache"]
    cmd = [*user, sys.executable, "-m", "clawstats", "sessions", "--json", "--state-dir", str(state), *store]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "readonly" not in done.stderr, done.stderr
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def _rows(body: dict[str, Any]) -> dict[str, Any]:
    assert body["health"]["status"] == "ok", body["health"]
    return {"sessions": body["sessions"], "totals": body["totals"]}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_read_only_dir_of_another_user_reads_all_and_changes_nothing(layout: str, outside_tmp: Path) -> None:
    reference = outside_tmp / "reference"
    shutil.copytree(LAYOUTS[layout], reference)
    expected = _rows(_sessions(reference, None, []))
    assert expected["sessions"]
    state = outside_tmp / "state"
    shutil.copytree(LAYOUTS[layout], state)
    _stopped(state)
    _read_only(state)
    before = _tree(state)
    cold = _rows(_sessions(state, outside_tmp / "cache", AS_NOBODY))
    warm = _rows(_sessions(state, outside_tmp / "cache", AS_NOBODY))  # from the index cache nobody wrote
    assert cold == expected and warm == expected
    assert _tree(state) == before


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_owner_may_write_but_nothing_is_created_or_changed(layout: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(LAYOUTS[layout], state)
    _stopped(state)
    before = _tree(state)
    rows = _rows(_sessions(state, tmp_path / "cache", []))
    assert rows["sessions"]
    assert _tree(state) == before  # no -wal, no -shm, no touched mtime


def _open_writer(database: Path) -> sqlite3.Connection:
    """A writer like the gateway: WAL, open for as long as it runs (never checkpointing here)."""
    writer = schema_writer(database)
    writer.isolation_level = None
    writer.execute("PRAGMA busy_timeout=0")
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    return writer


def _append_cost(writer: sqlite3.Connection, cost: float) -> None:
    sid = current_session_id(writer, "agent:ops:quick")
    top = writer.execute("SELECT max(seq) FROM transcript_events WHERE session_id = ?", (sid,)).fetchone()[0]
    append_events(writer, sid, [live_call(f"ro-{top + 1}", cost)], LIVE_MS)


def _quick_cost(url: str) -> float:
    return served_cost(url, QUICK)


def _wait_cost(url: str, want: float) -> None:
    wait_served_cost(url, QUICK, want, timeout_s=15)


def _wait_scans(url: str, count: int) -> None:
    """Until ``/healthz`` reports ``count`` more finished scans (``lastScanAt`` moving on)."""
    seen = [httpx.get(url + "/healthz", timeout=10.0).json()["lastScanAt"]]
    deadline = time.monotonic() + 15
    while len(set(seen)) <= count and time.monotonic() < deadline:
        time.sleep(0.05)
        seen.append(httpx.get(url + "/healthz", timeout=10.0).json()["lastScanAt"])
    assert len(set(seen)) > count, f"no new scans; lastScanAt stayed {seen[-1]}"


def test_gateway_running_then_stopped_on_a_read_only_dir(outside_tmp: Path) -> None:
    state = outside_tmp / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    _read_only(state)
    (state / OPS_DB).parent.chmod(0o755)  # the gateway (root here) owns and writes its directory
    (state / OPS_DB).chmod(0o644)
    args = ["serve", "--state-dir", str(state), "--cache-dir", str(outside_tmp / "cache"), "--poll-interval-s", "0.2"]
    server = start_server(args, command=[*AS_NOBODY, sys.executable, "-m", "clawstats"])
    try:
        start = _quick_cost(server.url)
        writer = _open_writer(state / OPS_DB)
        _append_cost(writer, 0.5)
        assert (state / f"{OPS_DB}-wal").exists() and (state / f"{OPS_DB}-shm").exists()
        _wait_cost(server.url, start + 0.5)  # read from the writer's WAL through its -shm, not ours to write
        _append_cost(writer, 0.25)
        _wait_cost(server.url, start + 0.75)
        writer.close()
        # The gateway, last out, checkpointed and removed its -wal and -shm: no reader held them.
        assert not (state / f"{OPS_DB}-wal").exists() and not (state / f"{OPS_DB}-shm").exists()
        stopped = _tree(state)
        _wait_scans(server.url, 3)  # some polls of the stopped store
        assert math.isclose(_quick_cost(server.url), start + 0.75, abs_tol=1e-9)
        assert httpx.get(server.url + "/healthz", timeout=10.0).json()["status"] == "ok"
        assert _tree(state) == stopped
    finally:
        stop_server(server)


def _touch_row(writer: sqlite3.Connection, updated_at_ms: int, total_tokens: int) -> None:
    entry = json.loads(
        writer.execute("SELECT entry_json FROM session_nodes WHERE session_key='agent:ops:quick'").fetchone()[0]
    )
    entry.update(updatedAt=updated_at_ms, totalTokens=total_tokens)
    writer.execute(
        "UPDATE session_nodes SET entry_json = ?, updated_at = ? WHERE session_key = 'agent:ops:quick'",
        (json.dumps(entry), updated_at_ms),
    )


def test_writer_starting_during_an_immutable_read_is_read_again(sqlite_state: Path) -> None:
    """The gateway starts and checkpoints into the file while a stopped-store (``immutable``) read
    is between its rows and its events: that scan must not serve the mix, but the new state."""
    database = sqlite_state / OPS_DB
    store = make_store(sqlite_state)
    store.scan()
    writer = _open_writer(database)  # a first gateway run, stopped again: no -wal, a changed file
    with writer:
        _append_cost(writer, 0.5)
    writer.close()
    assert not Path(f"{database}-wal").exists()
    started: list[sqlite3.Connection] = []

    def gateway_starts(frame: FrameType, event: str, _arg: object) -> None:
        if event == "call" and frame.f_code.co_name == "_read_events" and not started:
            started.append(_open_writer(database))
            started[0].execute("BEGIN IMMEDIATE")
            _append_cost(started[0], 0.25)
            _touch_row(started[0], 1795550400001, 20000)
            started[0].execute("COMMIT")
            started[0].execute("PRAGMA wal_checkpoint(TRUNCATE)")  # into the file being read

    sys.settrace(gateway_starts)
    try:
        during = store.scan().by_key["agent:ops:quick"]
    finally:
        sys.settrace(None)
    try:
        assert started, "the read never reached its events"
        after = make_store(sqlite_state).scan().by_key["agent:ops:quick"]
        assert (during.updated_at_ms, during.context_tokens) == (1795550400001, 20000)
        assert during == after
    finally:
        started[0].close()
