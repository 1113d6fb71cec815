"""The poller's start: the first scan runs with a longer thread switch interval."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from clawstats.core.snapshot import Snapshot
from clawstats.settings import Settings
from clawstats.watch import poller
from clawstats.watch.engine import open_store
from clawstats.watch.poller import Poller


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
