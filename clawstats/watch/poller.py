"""The scan loop: wake on file-system events (or every ``poll_interval_s``), scan off the
event loop, publish the new snapshot. The only caller of ``StatsStore.scan`` in a server.

Without file-system events, every ``poll_interval_s`` stats every transcript. With them
(watchfiles on the state dir), a scan stats only the paths the events named plus a slice of a
safety sweep that walks every transcript at ``SWEEP_FILES_PER_S`` (a missed event is caught
within one sweep), so an idle server over 50,000 sessions costs a few stats per second, not
50,000. ``sessions.json`` and the directories are checked on every scan either way (one
``fstat`` and one ``stat`` per agent).

The watcher starts only after the first scan has published (``WATCH_START_S`` later): setting it
up walks the whole state dir holding the GIL (~0.22 s at 50,000 sessions), and while it watches,
every file the cold read opens is an event its threads take and drop (~0.3 s of CPU at 50,000).
The scan right after it is set up is a full one: nothing written before it is missed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable

import watchfiles

from clawstats.core.snapshot import Snapshot
from clawstats.watch.store import StatsStore

log = logging.getLogger("clawstats")
#: OpenClaw writes these constantly and they never change our numbers.
#: The safety sweep's pace when file-system events work (a stat and a check each: ~6 µs, so
#: ~0.6 % of a core; at 50,000 sessions a missed event is caught within ~50 s). It only catches
#: what the kernel's events missed (a queue overflow), so it is paced for an idle server's cost.
SWEEP_FILES_PER_S = 1000.0
#: How often the file-system watcher wakes to hand over events, in ms. An append is seen one to
#: two steps after it is written; each wake takes the GIL, so an idle server pays per step
#: (measured on an empty store: step 10 ms 1.1 % of a core, 50 ms 0.5 %; 20 ms is ~0.8 %).
WATCH_STEP_MS = 20
#: How long after the first scan's publish the watcher is set up: readers waiting for the first
#: rows get them before its walk holds the event loop (at 50,000 sessions ~0.22 s).
WATCH_START_S = 0.25
#: The interpreter's thread switch interval during the first scan (the default is 5 ms). A client
#: polling ``/healthz`` every 20 ms made the event loop take the GIL from the scanning thread
#: every few ms, each request several times: at 50,000 sessions the first scan took ~0.25 s more
#: CPU. Requests during it wait a little longer (they are answered 503 anyway); restored after it.
FIRST_SCAN_SWITCH_S = 0.05
_NOISE = (".trajectory.jsonl", ".lock", ".tmp", "-journal", ".usage-cost-cache.json")


def _relevant(_change: watchfiles.Change, path: str) -> bool:
    return not path.endswith(_NOISE) and "/skills-prompts/" not in path


class Poller:
    def __init__(
        self,
        store: StatsStore,
        publish: Callable[[Snapshot], None],
        poll_interval_s: float = 1.0,
        watch: bool = True,
        debounce_ms: int = 20,
    ) -> None:
        self.store = store
        self.publish = publish
        self.poll_interval_s = poll_interval_s
        self.watch = watch
        self.debounce_ms = debounce_ms
        self.wake = asyncio.Event()
        self.watching = False
        self.changed: set[str] = set()  # paths reported by file-system events since the last scan
        self.last_full = 0.0
        self._sweep: list[str] = []  # the safety sweep's remaining paths
        self._swept_at = 0.0
        self._discovered_at = 0.0

    async def step(self) -> Snapshot:
        """One scan off the loop, then publish (always, so readers see fresh scan times).

        With file-system events, only the paths they named and the next slice of the safety
        sweep are stat'ed; without them, every transcript each ``poll_interval_s``.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        hint: set[str] | None = None
        if self.watching and self.last_full:
            hint = self.changed | self._sweep_slice(now)
        elif now - self.last_full >= self.poll_interval_s or not self.last_full:
            self.last_full = self._swept_at = now
        else:
            hint = self.changed
        self.changed = set()
        # Discovery (new agents, a new catalog) on every full scan and at least every poll
        # interval: with file-system events the scans are never full after the first.
        discover = now - self._discovered_at >= self.poll_interval_s
        if discover:
            self._discovered_at = now
        snapshot = await asyncio.to_thread(self._scan, hint, discover)
        self.publish(snapshot)
        return snapshot

    def _scan(self, hint: set[str] | None, discover: bool) -> Snapshot:
        # New agents / the state dir appearing: when due, and at once when an event names a
        # path under agents/ of no known agent (its store was just created).
        if self.store.discovery is not None and (hint is None or discover or self._unknown_agent(hint)):
            if self.store.discovery():
                hint = None  # new agents or a new catalog: every file is looked at
        return self.store.scan(hint)

    def _unknown_agent(self, paths: set[str]) -> bool:
        agents_dir = os.path.join(self.store.state_dir, "agents") + os.sep
        known = tuple(agents_dir + agent + os.sep for agent in self.store.health.layouts)
        return any(p.startswith(agents_dir) and not p.startswith(known) for p in paths)

    def _sweep_slice(self, now: float) -> set[str]:
        count = int((now - self._swept_at) * SWEEP_FILES_PER_S)
        if count < 1:
            return set()
        self._swept_at = now
        if not self._sweep:
            self._sweep = self.store.all_paths()
        cut = max(0, len(self._sweep) - count)
        picked = set(self._sweep[cut:])
        del self._sweep[cut:]
        return picked

    async def _watch(self, stop: asyncio.Event) -> None:
        state_dir = self.store.state_dir
        while not stop.is_set():
            if not os.path.isdir(state_dir):
                # Nothing to watch yet. (awatch would not fail: with ignore_permission_denied it
                # silently watches nothing, and every change would wait for the next full scan.)
                self.watching = False
                try:
                    await asyncio.wait_for(stop.wait(), timeout=min(self.poll_interval_s, 0.5))
                except TimeoutError:
                    pass
                continue
            try:
                self.watching = True
                # A full scan next (once this watch is set up: the walk below runs before the loop
                # runs anything else): what changed while nothing watched is read then.
                self.last_full = 0.0
                async for _changes in watchfiles.awatch(
                    state_dir,
                    watch_filter=_relevant,
                    debounce=self.debounce_ms,
                    step=WATCH_STEP_MS,
                    stop_event=stop,
                    ignore_permission_denied=True,
                ):
                    self.changed.update(path for _change, path in _changes)
                    self.wake.set()
            except Exception as exc:  # notify backend failed (no inotify, dir gone): poll only
                log.info("file-system events unavailable (%s); stat polling every %.2fs", exc, self.poll_interval_s)
            self.watching = False
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(self.poll_interval_s, 1.0))
            except TimeoutError:
                pass

    async def run(self, stop: asyncio.Event) -> None:
        watcher: asyncio.Task[None] | None = None
        default_s = sys.getswitchinterval()
        sys.setswitchinterval(max(default_s, FIRST_SCAN_SWITCH_S))
        switch_s: float | None = default_s  # None once restored after the first scan
        try:
            while not stop.is_set():
                if watcher is None and self.watch and self.last_full:  # the first scan is done
                    watcher = asyncio.create_task(self._watch(stop))
                    await asyncio.sleep(0)  # its first step sets the watch up before the scan below
                self.wake.clear()  # before the scan: an event during it triggers the next one
                try:
                    await self.step()
                except Exception:  # a bug, not bad input: keep serving the last snapshot
                    log.exception("scan failed; serving the last good snapshot")
                if switch_s is not None:
                    sys.setswitchinterval(switch_s)
                    switch_s = None
                waiter = asyncio.create_task(self.wake.wait())
                stopper = asyncio.create_task(stop.wait())
                timeout = self.poll_interval_s
                if watcher is None and self.watch:  # the first scan's wait: the watch is set up next
                    timeout = min(timeout, WATCH_START_S)
                await asyncio.wait({waiter, stopper}, timeout=timeout, return_when="FIRST_COMPLETED")
                waiter.cancel()
                stopper.cancel()
        finally:
            if switch_s is not None:  # stopped during the first scan
                sys.setswitchinterval(switch_s)
            if watcher is not None:
                watcher.cancel()
                try:
                    await watcher
                except asyncio.CancelledError:
                    pass
            await asyncio.to_thread(self.store.flush, True)
