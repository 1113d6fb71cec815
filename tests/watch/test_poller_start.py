"""The poller's start: the file-system watch is set up after the first scan, then a full scan."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from clawstats.core.snapshot import Snapshot
from clawstats.settings import Settings
from clawstats.watch import poller
from clawstats.watch.engine import open_store
from clawstats.watch.poller import Poller
from tests.conftest import OPS_TRANSCRIPT


def test_the_watch_is_set_up_after_the_first_scan_and_a_full_scan_follows(
    small_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setting the watch up walks the state dir holding the GIL, and a live watch takes an event
    for every file the cold read opens: neither may slow the first scan. What changed before the
    watch was up is read by a full scan right after it."""
    store = open_store(Settings(state_dir=str(small_state), no_cache=True), {}, follow=True)
    hints: list[set[str] | None] = []  # each scan's paths (None: a full scan)
    real_scan = store.scan

    def scan(changed: set[str] | None = None) -> Snapshot:
        hints.append(None if changed is None else set(changed))
        return real_scan(changed)

    monkeypatch.setattr(store, "scan", scan)
    scans_when_watched: list[int] = []

    async def awatch(*_paths: Any, stop_event: asyncio.Event, **_options: Any) -> AsyncIterator[set[Any]]:
        scans_when_watched.append(len(hints))
        await stop_event.wait()
        for changes in ():  # an async generator that yields no change
            yield changes

    monkeypatch.setattr(poller.watchfiles, "awatch", awatch)

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(Poller(store, lambda _snapshot: None, poll_interval_s=0.05).run(stop))
        while len(hints) < 3:
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(run())
    assert scans_when_watched == [1]  # set up once, after the first scan
    assert hints[:2] == [None, None]  # the first scan and the one after the watch was set up: full
    assert hints[2] is not None  # then only what events (and the sweep) name


def test_the_first_scan_runs_with_a_longer_thread_switch_interval(
    small_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """During the first scan, requests polling the server (503 until it ends) take the GIL from
    the scanning thread less often; the interpreter's interval is restored after it."""
    store = open_store(Settings(state_dir=str(small_state), no_cache=True), {}, follow=True)
    intervals: list[float] = []
    real_scan = store.scan

    def scan(changed: set[str] | None = None) -> Snapshot:
        intervals.append(sys.getswitchinterval())
        return real_scan(changed)

    monkeypatch.setattr(store, "scan", scan)
    default_s = sys.getswitchinterval()

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(Poller(store, lambda _snapshot: None, 0.05, watch=False).run(stop))
        while len(intervals) < 2:
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(run())
    assert intervals[0] == pytest.approx(max(default_s, poller.FIRST_SCAN_SWITCH_S)) != pytest.approx(default_s)
    assert intervals[1:] == [default_s] * (len(intervals) - 1)  # (kept in microseconds: read back as set)
    assert sys.getswitchinterval() == default_s


def test_the_events_of_a_state_dir_given_relative_name_the_transcripts_the_store_reads(
    small_state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """watchfiles names absolute paths: a state dir kept as given (``--state-dir state``) spelt its
    transcripts relative, no event named one, and every append waited for the safety sweep."""
    here = tmp_path / "here"
    shutil.copytree(small_state, here / "state")
    monkeypatch.chdir(here)
    store = open_store(Settings(state_dir="state", no_cache=True), {}, follow=True)
    assert store.state_dir.is_absolute()
    transcript = str(here / "state" / OPS_TRANSCRIPT)
    hints: list[set[str]] = []
    real_scan = store.scan

    def scan(changed: set[str] | None = None) -> Snapshot:
        if changed is not None:
            hints.append(set(changed))
        return real_scan(changed)

    monkeypatch.setattr(store, "scan", scan)

    async def run() -> None:
        stop = asyncio.Event()
        polling = Poller(store, lambda _snapshot: None, poll_interval_s=0.05)
        task = asyncio.create_task(polling.run(stop))
        while not polling.watching or polling.last_full == 0.0:  # watching, and its full scan done
            await asyncio.sleep(0.01)
        with open(transcript, "a") as fh:
            fh.write("{}\n")
        for _ in range(1000):  # until an event names the transcript as the store reads it
            if any(transcript in hint for hint in hints):
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(run())
    assert transcript in store.agents["ops"].tails  # the store's own spelling of it
    assert any(transcript in hint for hint in hints)
