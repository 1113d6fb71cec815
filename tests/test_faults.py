"""Fault storms on real files with the server running and a writer appending like OpenClaw.

After each storm the served rows and totals must equal a fresh one-shot scan exactly (nothing
lost, nothing doubled), /healthz must have said ``degraded`` while a condition lasted and ``ok``
after, and the server process must never have died. ``STORM_SCALE`` (env) multiplies the storm
sizes: the default suite runs short storms, ``make reliability`` runs them 10x longer.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import OPS_TRANSCRIPT, SMALL_STATE
from tests.servers import LiveServer, start_server, stop_server

SCALE = int(os.environ.get("STORM_SCALE", "1"))
MAIN = "agents/main/sessions"


class Writer(threading.Thread):
    """Appends assistant calls to transcripts at a steady rate, as OpenClaw does during runs."""

    def __init__(self, state: Path, rate_hz: float = 50.0) -> None:
        super().__init__(daemon=True)
        self.state = state
        self.period_s = 1.0 / rate_hz
        self.stop_flag = threading.Event()
        self.written = 0
        self.rng = random.Random(7)

    def run(self) -> None:
        targets = [self.state / OPS_TRANSCRIPT, *sorted((self.state / MAIN).glob("*.jsonl"))[:3]]
        while not self.stop_flag.is_set():
            path = self.rng.choice(targets)
            prompt = self.rng.randint(1000, 30000)
            entry = {
                "type": "message",
                "id": f"w{self.written:07d}",
                "parentId": None,
                "timestamp": "2026-11-24T18:00:00.000Z",
                "message": {
                    "role": "assistant",
                    "provider": "mock",
                    "model": "mock-small",
                    "usage": {
                        "input": prompt,
                        "output": 3,
                        "cacheRead": 0,
                        "cacheWrite": 0,
                        "cost": {"total": prompt * 5e-7},
                    },
                    "stopReason": "stop",
                },
            }
            try:
                with open(path, "a") as fh:  # two writes: a reader can see half a line
                    line = json.dumps(entry) + "\n"
                    fh.write(line[:40])
                    fh.flush()
                    fh.write(line[40:])
                self.written += 1
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                pass  # a storm removed it: OpenClaw would fail that write too
            time.sleep(self.period_s)

    def finish(self) -> None:
        self.stop_flag.set()
        self.join(timeout=10)


def fresh_scan(state: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "clawstats", "sessions", "--state-dir", str(state), "--no-cache", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout)


def _numbers(body: dict[str, Any]) -> tuple[Any, ...]:
    rows = sorted((r["key"], r["totalCost"], r["contextTokens"], r["usage"]["total"]) for r in body["sessions"])
    return body["totals"]["totalCost"], body["totals"]["usage"], rows


def settle_and_compare(server: LiveServer, state: Path) -> None:
    """Wait until the server has caught up, then demand exact equality with a fresh scan."""
    expected = _numbers(fresh_scan(state))
    deadline = time.monotonic() + 20
    served = None
    while time.monotonic() < deadline:
        served = _numbers(httpx.get(server.url + "/api/sessions").json())
        if served == expected:
            return
        time.sleep(0.1)
    assert served == expected


class Health(threading.Thread):
    """Samples /healthz in the background: which statuses were seen."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: list[str] = []
        self.reasons: set[str] = set()
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                body = httpx.get(self.url + "/healthz", timeout=5).json()
                self.seen.append(body["status"])
                self.reasons.update(body.get("reasons", []))
            except httpx.HTTPError:
                self.seen.append("unreachable")
            time.sleep(0.05)

    def finish(self) -> None:
        self.stop_flag.set()
        self.join(timeout=10)


@pytest.fixture
def running(small_state: Path, tmp_path: Path) -> Iterator[tuple[LiveServer, Path]]:
    server = start_server(
        ["serve", "--state-dir", str(small_state), "--cache-dir", str(tmp_path / "cache"), "--poll-interval-s", "0.2"]
    )
    try:
        yield server, small_state
        assert server.proc.poll() is None, "the server died"
    finally:
        stop_server(server)


def test_truncate_replace_delete_recreate(running: tuple[LiveServer, Path]) -> None:
    server, state = running
    writer = Writer(state)
    writer.start()
    files = sorted((state / MAIN).glob("*.jsonl"))
    rng = random.Random(1)
    for _ in range(10 * SCALE):
        victim = rng.choice(files)
        fault = rng.choice(["truncate", "replace", "delete"])
        data = victim.read_bytes() if victim.exists() else b""
        if fault == "truncate":
            with open(victim, "r+b") as fh:
                fh.truncate(len(data) // 2)
        elif fault == "replace":
            tmp = victim.with_name(victim.name + ".new")
            tmp.write_bytes(rng.choice(files).read_bytes() if rng.random() < 0.5 else data[: len(data) // 3])
            os.replace(tmp, victim)
        else:
            victim.unlink(missing_ok=True)
            time.sleep(0.05)
            victim.write_bytes(data)
        time.sleep(0.1)
    writer.finish()
    assert writer.written > 0
    settle_and_compare(server, state)


def test_index_replaced_thousands_of_times_with_stray_files(running: tuple[LiveServer, Path]) -> None:
    server, state = running
    writer = Writer(state)
    writer.start()
    index = state / MAIN / "sessions.json"
    doc = json.loads(index.read_text())
    rng = random.Random(2)
    (index.parent / "sessions.json.lock").write_text('{"pid": 4242}')
    for n in range(1000 * SCALE):
        key = rng.choice(sorted(doc))
        doc[key]["updatedAt"] = 1795540000000 + n
        doc[key]["model"] = rng.choice(["mock-large", "mock-small"])
        tmp = index.with_name(f"sessions.json.4242.{n:06d}.tmp")
        tmp.write_text(json.dumps(doc, indent=2))
        if n % 97 == 0:
            continue  # a stray tmp file left behind, as after a crashed writer
        os.replace(tmp, index)
    writer.finish()
    settle_and_compare(server, state)
    health = httpx.get(server.url + "/healthz").json()
    assert health["status"] == "ok" and "indexMalformed" not in health["skipped"]


def test_unreadable_file_and_vanished_state_dir_degrade_then_recover(running: tuple[LiveServer, Path]) -> None:
    server, state = running
    monitor = Health(server.url)
    monitor.start()
    # A transcript that cannot be read (root ignores permission bits: make it a directory).
    victim = state / OPS_TRANSCRIPT
    saved = victim.read_bytes()
    victim.unlink()
    victim.mkdir()
    time.sleep(1.0)
    victim.rmdir()
    victim.write_bytes(saved)
    time.sleep(1.0)
    # The whole state dir removed and recreated.
    aside = state.with_name("aside")
    os.rename(state, aside)
    time.sleep(1.0)
    os.rename(aside, state)
    time.sleep(1.0)
    monitor.finish()
    assert "degraded" in monitor.seen and monitor.seen[-1] == "ok"
    assert "unreachable" not in monitor.seen
    assert any("cannot read" in r for r in monitor.reasons) and any(
        "state dir is missing" in r for r in monitor.reasons
    )
    settle_and_compare(server, state)


def test_full_cache_disk_degrades_but_serves(small_state: Path, tmp_path: Path) -> None:
    """A cache write that fails as on a full disk (RLIMIT_FSIZE, EFBIG), with the server running."""

    def tiny_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clawstats",
            "serve",
            "--state-dir",
            str(small_state),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--port",
            "0",
            "--poll-interval-s",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=tiny_files,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().split(" on ")[1].split()[0]
    try:
        deadline = time.monotonic() + 30
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                body = httpx.get(url + "/healthz").json()
                if body.get("status") == "degraded":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert body.get("status") == "degraded" and any("index cache" in r for r in body["reasons"]), body
        served = httpx.get(url + "/api/sessions").json()
        assert _numbers(served) == _numbers(fresh_scan(small_state))
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_sigkill_mid_scan_and_restart(tmp_path: Path) -> None:
    from bench.gen_corpus import generate

    state = tmp_path / "state"
    shutil.copytree(SMALL_STATE, state)
    generate(state / "extra", sessions=60, turns=60)  # enough bytes that the first scan takes a while
    for agent_dir in (state / "extra" / "agents").iterdir():
        shutil.move(str(agent_dir), str(state / "agents" / f"x{agent_dir.name}"))
    cache = tmp_path / "cache"
    for delay_s in (0.05, 0.2, 0.4) * SCALE:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clawstats",
                "serve",
                "--state-dir",
                str(state),
                "--cache-dir",
                str(cache),
                "--port",
                "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    server = start_server(["serve", "--state-dir", str(state), "--cache-dir", str(cache)])
    try:
        settle_and_compare(server, state)
    finally:
        stop_server(server)
