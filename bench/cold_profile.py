"""Where a cold ``clawstats sessions --json --no-cache`` spends its CPU, phase by phase.

    python bench/cold_profile.py --sessions 50000 [--layout file] [--runs 3]

The minimum of ``--runs`` runs of ``cli.main(["sessions", "--json", "--no-cache", ...])`` in
this process (run on a quiet machine: CPU seconds, not wall, but two busy cores still slow each
other's caches), with ``time.process_time`` around the plan (``FileAgent.prepare``), the cold
read's side in this process (waiting for and adopting the workers' images), the SQLite agents'
read, the joins loop, the publish (rows, enrichment, totals; of it, the rows built here beside the
forked child of ``watch/split.py``) and the JSON output; the workers' CPU and the split's child's
from ``getrusage`` of the children; wall time beside it. What a worker spends per file, beside
the floor of reading it: ``bench/read_cost.py``; ccusage: ``bench/sweep.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clawstats import cli
from clawstats.watch import cold, file_agent, publisher, sqlite_store, store

WORK = Path(__file__).resolve().parent / ".work"


class Phases:
    """CPU seconds of this process, per wrapped function (outermost call only)."""

    def __init__(self) -> None:
        self.cpu_s: dict[str, float] = {}
        self._depth = 0

    def wrap(self, owner: Any, name: str, label: str) -> Callable[[], None]:
        real = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return real(*args, **kwargs)
            finally:
                self.cpu_s[label] = self.cpu_s.get(label, 0.0) + time.process_time() - started

        setattr(owner, name, timed)
        return lambda: setattr(owner, name, real)

    def child(self, owner: Any, name: str, label: str) -> Callable[[], None]:
        """The CPU of the children reaped during each call (``split_map``'s forked child)."""
        real = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = _children_cpu_s()
            try:
                return real(*args, **kwargs)
            finally:
                self.cpu_s[label] = self.cpu_s.get(label, 0.0) + _children_cpu_s() - started

        setattr(owner, name, timed)
        return lambda: setattr(owner, name, real)


def _children_cpu_s() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


@contextlib.contextmanager
def phased() -> Iterator[Phases]:
    phases = Phases()
    undo = [
        phases.wrap(file_agent.FileAgent, "prepare", "plan"),
        phases.wrap(sqlite_store.SqliteAgent, "prepare", "plan"),
        phases.wrap(sqlite_store.SqliteAgent, "scan", "SQLite read (its agents' scan)"),
        phases.wrap(cold.ColdRead, "collect", "wait for and adopt the workers' images"),
        phases.wrap(store, "read_cold", "read_cold (plan + read + adopt)"),  # as store.py named it
        phases.wrap(publisher.Publisher, "publish", "publish (rows, enrichment, totals)"),
        phases.wrap(publisher, "split_map", "publish: rows built here beside the child (split)"),
        phases.child(publisher, "split_map", "publish: rows built by the forked child (its CPU)"),
        phases.wrap(store.StatsStore, "_scan", "scan (all of the read)"),
    ]
    try:
        yield phases
    finally:
        for restore in undo:
            restore()


def cli_run(state: Path) -> dict[str, float]:
    before = _children_cpu_s()
    with phased() as phases, contextlib.redirect_stdout(io.StringIO()):
        started, wall = time.process_time(), time.perf_counter()
        cli.main(["sessions", "--json", "--no-cache", "--state-dir", str(state)])
        total, wall = time.process_time() - started, time.perf_counter() - wall
    children = _children_cpu_s() - before
    out = dict(phases.cpu_s)
    split_child = out.pop("publish: rows built by the forked child (its CPU)", 0.0)
    scan = out.pop("scan (all of the read)")
    read = out["read_cold (plan + read + adopt)"]
    out["read_cold: rest (stat for batch sizes, fork, second batch)"] = (
        read - out.get("plan", 0.0) - out.get("wait for and adopt the workers' images", 0.0)
    )
    out["joins loop (scan minus read_cold, SQLite read and publish)"] = (
        scan - read - out.get("SQLite read (its agents' scan)", 0.0) - out["publish (rows, enrichment, totals)"]
    )
    out["output, store set-up, close (CLI minus scan)"] = total - scan
    out["this process, all"] = total
    out["workers (children, but the split's child)"] = children - split_child
    out["publish: rows built by the forked child (its CPU)"] = split_child
    out["wall"] = wall
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50000)
    parser.add_argument("--layout", choices=["file", "sqlite"], default="file")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    state = WORK / (f"sweep-{args.sessions}" + ("-sqlite" if args.layout == "sqlite" else ""))
    runs = [cli_run(state) for _ in range(args.runs)]
    print(f"cold CLI, {state.name}: CPU seconds by phase (min of {args.runs} runs)")
    for label in sorted({label for r in runs for label in r}, key=list(runs[0]).index):
        print(f"  {min(r.get(label, 0.0) for r in runs):7.2f}  {label}")


if __name__ == "__main__":
    main()
