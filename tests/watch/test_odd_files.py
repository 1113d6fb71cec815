"""Odd files in the store: FIFOs, directories, symlink loops, binary files, unreadable dirs.

Never a hang, never a traceback, never a wrong "all clear"; only regular files are read.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import OPS_TRANSCRIPT, SMALL_STATE, make_store

SESSIONS = "agents/main/sessions"


def _cli(args: list[str], timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAWSTATS_", "OPENCLAW_"))}
    return subprocess.run(
        [sys.executable, "-m", "clawstats", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env=env,
    )


def test_fifo_transcript_never_blocks_the_scan(small_state: Path) -> None:
    os.mkfifo(small_state / SESSIONS / "x.jsonl")
    rows = json.loads((small_state / SESSIONS / "sessions.json").read_text())
    sid = next(iter(rows.values()))["sessionId"]
    os.replace(small_state / SESSIONS / f"{sid}.jsonl", small_state / SESSIONS / f"{sid}.jsonl.moved")
    os.mkfifo(small_state / SESSIONS / f"{sid}.jsonl")  # a row pointing at a FIFO
    proc = _cli(["sessions", "--state-dir", str(small_state), "--no-cache", "--json"], timeout_s=20)
    assert proc.returncode == 0, proc.stderr
    keys = {r["key"] for r in json.loads(proc.stdout)["sessions"]}
    assert "agent:main:x" not in keys


def test_a_transcript_replaced_by_a_directory_degrades_from_the_scan_that_sees_it(small_state: Path) -> None:
    """The listing names it "not a regular file"; the transcript's tail leaving the plan in the
    same scan cleared that condition (the next scans, with nothing changed, said "ok" all along)."""
    store = make_store(small_state)
    assert store.scan().health.status == "ok"
    victim = small_state / OPS_TRANSCRIPT
    victim.unlink()
    victim.mkdir()
    for _ in range(2):
        health = store.scan().health
        assert health.status == "degraded"
        assert "not a regular file" in health.conditions[str(victim)]
    victim.rmdir()
    victim.write_bytes((SMALL_STATE / OPS_TRANSCRIPT).read_bytes())
    assert store.scan().health.status == "ok"


def test_fifo_does_not_stop_later_appends(small_state: Path) -> None:
    os.mkfifo(small_state / "agents/ops/sessions/x.jsonl")
    store = make_store(small_state)
    first = store.scan()
    path = small_state / OPS_TRANSCRIPT
    line = path.read_bytes().splitlines(keepends=True)[-1]
    with open(path, "ab") as fh:
        fh.write(line)
    second = store.scan()
    assert second.revision > first.revision
    assert second.health.counters.get("notRegularFile") == 1
    assert second.health.status == "degraded"  # not a false "ok" while a FIFO sits there


@pytest.mark.parametrize("kind", ["directory", "symlink-loop", "dangling-symlink", "binary"])
def test_non_transcripts_do_not_become_rows(small_state: Path, kind: str) -> None:
    target = small_state / SESSIONS / "x.jsonl"
    if kind == "directory":
        target.mkdir()
    elif kind == "symlink-loop":
        os.symlink("x.jsonl", target)
    elif kind == "dangling-symlink":
        os.symlink("nowhere.jsonl", target)
    else:
        target.write_bytes(bytes(range(256)) * 40 + b"\n\x00\xff\n")
    snapshot = make_store(small_state).scan()
    assert "agent:main:x" not in snapshot.by_key
    assert len(snapshot.rows) == 9


def _unreadable(path: Path) -> None:
    """Another user's mode-700 dir. Root reads everything, so for root the dir goes to "nobody"
    and the CLI runs without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (see ``_as_other_user``)."""
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)
        path.chmod(0o700)
    else:
        path.chmod(0o000)


def _without_dac(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a directory unreadable")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *args]


def _as_other_user(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAWSTATS_", "OPENCLAW_"))}
    command = _without_dac([sys.executable, "-m", "clawstats", *args])
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False, env=env)


@pytest.mark.parametrize("unreadable", ["state", "agents", "agents/ops/sessions"])
def test_unreadable_dirs_are_one_warning_and_no_all_clear(small_state: Path, unreadable: str) -> None:
    target = small_state if unreadable == "state" else small_state / unreadable
    try:
        _unreadable(target)
        state = str(small_state)
        listing = _as_other_user(["sessions", "--state-dir", state, "--no-cache"])
        assert listing.returncode == 0, listing.stderr
        assert "Traceback" not in listing.stderr and "clawstats: warning:" in listing.stderr
        check = _as_other_user(["check", "--state-dir", state, "--no-cache", "--max-session-cost", "1000"])
        assert check.returncode == 3, check.stderr
        assert "Traceback" not in check.stderr
    finally:
        target.chmod(0o755)


def test_unreadable_sessions_dir_degrades_the_server(small_state: Path) -> None:
    import httpx

    _unreadable(small_state / "agents/ops/sessions")
    args = ["serve", "--state-dir", str(small_state), "--no-cache", "--port", "0"]
    proc = subprocess.Popen(
        _without_dac([sys.executable, "-m", "clawstats", *args]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "http://" in line, proc.stderr.read() if proc.stderr else ""
        url = line.split(" on ")[1].split()[0]
        deadline, body = time.monotonic() + 20, None
        while time.monotonic() < deadline:
            response = httpx.get(url + "/healthz")
            body = response.json()
            if response.status_code == 200:
                break
            time.sleep(0.05)
        assert body is not None and body["status"] == "degraded", body
        assert any("agents/ops/sessions" in r for r in body["reasons"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        (small_state / "agents/ops/sessions").chmod(0o755)


@pytest.mark.parametrize("case", ["agent-nope", "agents-dir", "empty-dir", "locked-db"])
def test_check_without_data_is_no_all_clear(tmp_path: Path, sqlite_state: Path, case: str) -> None:
    state = str(SMALL_STATE)
    extra: list[str] = []
    locker = None
    if case == "agent-nope":
        extra = ["--agent", "nope"]
    elif case == "agents-dir":
        state = str(SMALL_STATE / "agents")
    elif case == "empty-dir":
        state = str(tmp_path)
    else:
        state = str(sqlite_state)
        database = glob.glob(str(sqlite_state / "agents/*/agent/openclaw-agent.sqlite"))[0]
        locker = sqlite3.connect(database, isolation_level=None)
        locker.execute("PRAGMA locking_mode=EXCLUSIVE")
        locker.execute("BEGIN EXCLUSIVE")
        locker.execute("CREATE TABLE held_by_test (x)")
    try:
        check = _cli(["check", "--state-dir", state, "--no-cache", "--max-session-cost", "1000", *extra])
        listing = _cli(["sessions", "--state-dir", state, "--no-cache", *extra])
    finally:
        if locker is not None:
            locker.close()
    assert check.returncode == 3, (check.returncode, check.stderr)
    assert "no all-clear" in check.stderr and "Traceback" not in check.stderr
    assert listing.returncode == 0 and "clawstats: warning:" in listing.stderr


def test_max_line_bytes_is_part_of_the_index_identity(small_state: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    full = make_store(small_state, no_cache=False, cache_dir=cache).scan().totals.total_cost
    small_store = make_store(small_state, no_cache=False, cache_dir=cache, max_line_bytes=1000)
    small = small_store.scan()
    assert small.totals.total_cost < full
    assert small_store.cache is not None
    small_store.close()  # the index persisted with --max-line-bytes=1000's states
    again = make_store(small_state, no_cache=False, cache_dir=cache).scan()
    assert again.totals.total_cost == full


def test_server_with_a_fifo_sees_appends_says_degraded_and_stops(small_state: Path) -> None:
    import signal

    import httpx

    from tests.servers import start_server

    os.mkfifo(small_state / "agents/ops/sessions/x.jsonl")
    server = start_server(["serve", "--state-dir", str(small_state), "--no-cache", "--poll-interval-s", "0.2"])
    try:
        before = httpx.get(server.url + "/api/sessions").json()["totals"]["calls"]
        path = small_state / OPS_TRANSCRIPT
        call = next(line for line in reversed(path.read_bytes().splitlines(keepends=True)) if b'"usage"' in line)
        with open(path, "ab") as fh:
            fh.write(call)
        deadline, calls = time.monotonic() + 20, before
        while calls == before and time.monotonic() < deadline:
            time.sleep(0.05)
            calls = httpx.get(server.url + "/api/sessions").json()["totals"]["calls"]
        assert calls > before, "an append after the FIFO was never seen"
        health = httpx.get(server.url + "/healthz").json()
        assert health["status"] == "degraded" and any("x.jsonl" in r for r in health["reasons"])
    finally:
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=15) == 0
        if server.proc.stdout is not None:
            server.proc.stdout.close()


@pytest.mark.parametrize("name", ["sessions.json", "aaaaaaaa-0000-4000-8000-00000000000f.trajectory.jsonl"])
def test_fifo_index_or_trace_never_blocks(small_state: Path, name: str) -> None:
    sessions = small_state / "agents/ops/sessions"
    if name.endswith(".trajectory.jsonl"):
        # A reset archive of unknown owner: its trace's first line would be read to learn the key.
        archive = sessions / "aaaaaaaa-0000-4000-8000-00000000000f.jsonl.reset.2026-11-24T18-01-00.000Z"
        shutil.copy(small_state / OPS_TRANSCRIPT, archive)
    path = sessions / name
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    proc = _cli(["sessions", "--state-dir", str(small_state), "--no-cache", "--json"], timeout_s=20)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["sessions"]
    if name == "sessions.json":
        assert body["health"]["status"] == "degraded" and "could not read" in proc.stderr


def test_fifo_in_place_of_the_sqlite_database_never_blocks(sqlite_state: Path) -> None:
    database = Path(glob.glob(str(sqlite_state / "agents/*/agent/openclaw-agent.sqlite"))[0])
    store = make_store(sqlite_state)
    first = store.scan()
    for suffix in ("", "-wal", "-shm"):
        Path(str(database) + suffix).unlink(missing_ok=True)
    os.mkfifo(database)
    second = store.scan()  # returns (it used to block in open() forever)
    assert second.health.status == "degraded"
    assert any(str(database) in path for path in second.health.conditions)
    assert first.health.status == "ok"
