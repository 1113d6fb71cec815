"""Cold reads in worker processes, by the batch: files never read are grouped into batches of
similar byte size (of similar counts when there are thousands: their sizes are sampled, not each
stat'ed), each worker reads a whole batch and returns one compact result for it.

One future per file made a store of 20,000 small sessions pay the pickling and the inter-process
round trip 20,000 times (25 of 35 s waiting on futures); per batch it is paid a few dozen times.
The live tail never comes here: it reads in the writer's own process.
"""

from __future__ import annotations

import heapq
import logging
import os
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import BrokenExecutor
from typing import TYPE_CHECKING

from clawstats.core.health import HealthLog
from clawstats.core.usage import Pricer
from clawstats.watch.tail import Tail
from clawstats.watch.tail_image import TailImage, adopt, export, read_whole

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger("clawstats")

#: Below this many bytes of cold reads, forking workers costs more than it saves.
PARALLEL_MIN_BYTES = 32 << 20
#: Batches per worker: enough that the workers finish together, few enough to pay little IPC.
BATCHES_PER_WORKER = 8
#: From this many files on, their sizes are sampled (one file in ``SAMPLE_EVERY``), not each
#: stat'ed: 50,000 stats were ~0.35 s before any worker started, and so many files are not a few
#: huge ones, so batches of equal counts handed out as workers free up end together.
SAMPLE_MIN_FILES = 4096
SAMPLE_EVERY = 64
#: Batches per worker then: smaller ones (~800 files at 50,000), so that the last one a worker
#: takes while the other has none left is short (a batch of 3,000 files is ~0.2 s of a core).
COUNTED_BATCHES_PER_WORKER = 32

Image = tuple[TailImage, dict[str, int]]  # (exported tail, skip counts by kind)
PriceOf = Callable[[str], Pricer | None]
#: How the forked workers price a path's calls: set before the pool forks, inherited, never pickled.
_price_of: PriceOf = lambda _path: None  # noqa: E731


def fork_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes forked from this one (they inherit what they read with). Imported here:
    a read too small to fork (most CLI runs) need not import multiprocessing."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))


def batches(sizes: dict[str, int], count: int) -> list[list[str]]:
    """``count`` batches of about equal bytes; big files first so every batch ends even."""
    heap: list[tuple[int, int]] = [(0, index) for index in range(max(1, count))]
    groups: list[list[str]] = [[] for _ in heap]
    for path in sorted(sizes, key=sizes.__getitem__, reverse=True):
        total, index = heapq.heappop(heap)  # the lightest batch so far takes the next file
        groups[index].append(path)
        heapq.heappush(heap, (total + sizes[path], index))
    return [group for group in groups if group]


class ColdRead:
    """Whole reads of ``paths`` by ``workers`` processes, started at once; :meth:`collect` adopts
    them (the store plans meanwhile, on a core the workers leave free until the plan is done).
    Nothing starts when forking is not worth it (``paths`` empty: the caller reads them itself).
    Files that vanish or fail are left out: their ordinary poll reports it."""

    def __init__(self, paths: list[str], workers: int, max_line_bytes: int, price_of: PriceOf) -> None:
        self.paths: frozenset[str] = frozenset()  # those being read
        self._price_of = price_of
        self._pool: ProcessPoolExecutor | None = None
        self._results: Iterator[list[Image]] = iter(())
        if workers < 2 or len(paths) < 2:
            return
        count = workers * BATCHES_PER_WORKER
        if len(paths) >= SAMPLE_MIN_FILES:
            sample = _sizes(paths[::SAMPLE_EVERY])
            if sum(sample.values()) * len(paths) < PARALLEL_MIN_BYTES * max(len(sample), 1):
                return
            count = workers * COUNTED_BATCHES_PER_WORKER
            # every batch a spread of the listing (its agents and directories)
            groups = [paths[at::count] for at in range(min(count, len(paths)))]
            reading: Collection[str] = paths
        else:
            sizes = _sizes(paths)
            if sum(sizes.values()) < PARALLEL_MIN_BYTES:
                return
            groups = batches(sizes, count)
            reading = sizes
        global _price_of
        _price_of = price_of
        try:
            self._pool = fork_pool(workers)
            self._results = self._pool.map(_read_batch, groups, [max_line_bytes] * len(groups))
        except (OSError, BrokenExecutor) as exc:  # no process to be had (a pids limit, no memory)
            log.warning("cold read: no worker process (%s): the files are read in this one", exc)
            self.close()
            return
        self.paths = frozenset(reading)

    def __enter__(self) -> ColdRead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def collect(self, health: HealthLog) -> list[Tail]:
        """The tails read (adopted here, as each batch comes), in batch order."""
        tails: list[Tail] = []
        try:
            for images in self._results:
                for image, counts in images:
                    tail = adopt(image, self._price_of(image.path))
                    tails.append(tail)
                    for kind, n in counts.items():
                        health.count(tail.path, kind, "(read by a worker)", n)
        except (OSError, BrokenExecutor) as exc:  # a worker killed (the OOM killer), the pool broken
            # the files no worker handed back are the plan's, never read: polled in this process
            log.warning("cold read: worker processes failed (%s): %d files read by them", exc, len(tails))
        finally:
            self.close()
        return tails

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
            self._results = iter(())


def read_in_workers(
    paths: list[str], workers: int, max_line_bytes: int, health: HealthLog, price_of: PriceOf
) -> list[Tail]:
    """Whole reads of ``paths`` on ``workers`` processes; [] when not worth forking (the caller
    then reads them itself). Files that vanish or fail are left out: their ordinary poll reports it."""
    with ColdRead(paths, workers, max_line_bytes, price_of) as read:
        return read.collect(health)


def _sizes(paths: list[str]) -> dict[str, int]:
    """Bytes of each path that can be stat'ed (a vanished one is left out)."""
    sizes: dict[str, int] = {}
    for path in paths:
        try:
            sizes[path] = os.stat(path).st_size
        except OSError:
            continue
    return sizes


def _read_batch(paths: list[str], max_line_bytes: int) -> list[Image]:
    images: list[Image] = []
    for path in paths:
        try:
            tail, health = read_whole(path, max_line_bytes, _price_of(path))
        except OSError:
            continue  # vanished or unreadable: the ordinary poll after this reports it
        images.append((export(tail), dict(health.counters)))
    return images
