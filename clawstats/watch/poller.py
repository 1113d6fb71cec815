"""The scan loop: wake on file-system events (or every ``poll_interval_s``), scan off the
event loop, publish the new snapshot. The only caller of ``StatsStore.scan`` in a server.

Stat polling is the baseline (``sessions.json`` is replaced by rename, inotify is not always
available, WSL and network mounts miss events); watchfiles, when it can watch the state dir,
only shortens the wait so an append shows within tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

import watchfiles

from clawstats.core.snapshot import Snapshot
from clawstats.watch.store import StatsStore

log = logging.getLogger("clawstats")
#: OpenClaw writes these constantly and they never change our numbers.
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
        self.scans = 0
        self.watching = False
        self.changed: set[str] = set()  # paths reported by file-system events since the last scan
        self.last_full = 0.0

    async def step(self) -> Snapshot:
        """One scan off the loop, then publish (always, so readers see fresh scan times).

        Between full scans (every ``poll_interval_s``: a stat of every file, the safety net for
        missed events) only the paths that file-system events named are stat'ed, so the cost
        of an append does not grow with the number of transcripts.
        """
        loop = asyncio.get_running_loop()
        hint: set[str] | None = None
        if self.watching and loop.time() - self.last_full < self.poll_interval_s:
            hint = self.changed
        else:
            self.last_full = loop.time()
        self.changed = set()
        snapshot = await asyncio.to_thread(self._scan, hint)
        self.scans += 1
        self.publish(snapshot)
        return snapshot

    def _scan(self, hint: set[str] | None) -> Snapshot:
        # New agents / the state dir appearing: on every full scan, and at once when an event
        # names a path under agents/ of no known agent (its store was just created).
        if self.store.discovery is not None and (hint is None or self._unknown_agent(hint)):
            if self.store.discovery():
                hint = None  # new agents or a new catalog: every file is looked at
        return self.store.scan(hint)

    def _unknown_agent(self, paths: set[str]) -> bool:
        agents_dir = os.path.join(self.store.state_dir, "agents") + os.sep
        known = tuple(agents_dir + agent + os.sep for agent in self.store.health.layouts)
        return any(p.startswith(agents_dir) and not p.startswith(known) for p in paths)

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
                async for _changes in watchfiles.awatch(
                    state_dir,
                    watch_filter=_relevant,
                    debounce=self.debounce_ms,
                    step=10,
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
        watcher = asyncio.create_task(self._watch(stop)) if self.watch else None
        try:
            while not stop.is_set():
                self.wake.clear()  # before the scan: an event during it triggers the next one
                try:
                    await self.step()
                except Exception:  # a bug, not bad input: keep serving the last snapshot
                    log.exception("scan failed; serving the last good snapshot")
                waiter = asyncio.create_task(self.wake.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=self.poll_interval_s, return_when="FIRST_COMPLETED")
                waiter.cancel()
                stopper.cancel()
        finally:
            if watcher is not None:
                watcher.cancel()
                try:
                    await watcher
                except asyncio.CancelledError:
                    pass
            if self.store.cache is not None:
                await asyncio.to_thread(self.store.cache.save, self.store.all_tails(), self.store.files_owners(), True)
