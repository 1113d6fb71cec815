"""Where a cold ``clawstats sessions --json --no-cache`` spends its CPU, phase by phase, beside
the floor of reading the same files in pure Python with msgspec.

    python bench/cold_profile.py --sessions 50000 [--layout file] [--sample 5000] [--runs 3]

Three figures, each the minimum of ``--runs`` runs, in one process (run on a quiet machine:
these are CPU seconds, not wall, but two busy cores still slow each other's caches):

- **the CLI, by phase**: ``cli.main(["sessions", "--json", "--no-cache", ...])`` in this
  process, with ``time.process_time`` around the plan (``FileAgent.prepare``), the cold read's
  side in this process (waiting for and adopting the workers' images), the joins loop, the
  publish (rows, enrichment, totals) and the JSON output; the workers' CPU from ``getrusage``
  of the children. Wall time beside it.
- **per file, in one process, over ``--sample`` transcripts** (file layout): the workers' path
  (``tail.read_whole`` + ``tail.export``) against a floor that opens, reads and decodes each file
  with msgspec into a three-field struct and sums its cost: what reading and decoding cost before
  any statistics are kept. The difference, times the file count, is the fold's share.
- **ccusage** is not run here (``bench/sweep.py`` does, in the same run as the CLI).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clawstats import cli
from clawstats.watch import cold, file_agent, publisher, sqlite_store, store, tail

WORK = Path(__file__).resolve().parent / ".work"


class _Cost(msgspec.Struct):
    total: float = 0.0


class _Usage(msgspec.Struct):
    totalTokens: int = 0
    cost: _Cost | float | None = None


class _Message(msgspec.Struct):
    usage: _Usage | None = None


class _Line(msgspec.Struct):
    type: str = ""
    timestamp: str | None = None
    message: _Message | None = None


_floor_decoder = msgspec.json.Decoder(_Line)


def floor_read(path: str) -> float:
    """Open, read, decode every line into a tiny struct, sum the cost: the pure-Python floor."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    total = 0.0
    for line in _floor_decoder.decode_lines(data):
        message = line.message
        if message is not None and message.usage is not None and isinstance(message.usage.cost, _Cost):
            total += message.usage.cost.total
    return total


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
        phases.wrap(store.StatsStore, "_scan", "scan (all of the read)"),
    ]
    try:
        yield phases
    finally:
        for restore in undo:
            restore()


def cli_run(state: Path) -> dict[str, float]:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = children.ru_utime + children.ru_stime
    with phased() as phases, contextlib.redirect_stdout(io.StringIO()):
        started, wall = time.process_time(), time.perf_counter()
        cli.main(["sessions", "--json", "--no-cache", "--state-dir", str(state)])
        total, wall = time.process_time() - started, time.perf_counter() - wall
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = dict(phases.cpu_s)
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
    out["workers (children), all"] = children.ru_utime + children.ru_stime - before
    out["wall"] = wall
    return out


def per_file(state: Path, sample: int) -> dict[str, float]:
    paths = sorted(str(p) for p in (state / "agents").glob("*/sessions/*.jsonl"))
    step = max(1, len(paths) // sample)
    picked = paths[::step][:sample]
    started = time.process_time()
    for path in picked:
        floor_read(path)
    floor = time.process_time() - started
    started = time.process_time()
    for path in picked:
        tail.export(tail.read_whole(path, 1 << 26)[0])
    full = time.process_time() - started
    return {"files": len(picked), "floor_us": floor / len(picked) * 1e6, "workers_path_us": full / len(picked) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50000)
    parser.add_argument("--layout", choices=["file", "sqlite"], default="file")
    parser.add_argument("--sample", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    state = WORK / (f"sweep-{args.sessions}" + ("-sqlite" if args.layout == "sqlite" else ""))
    runs = [cli_run(state) for _ in range(args.runs)]
    print(f"cold CLI, {state.name}: CPU seconds by phase (min of {args.runs} runs)")
    for label in sorted({label for r in runs for label in r}, key=list(runs[0]).index):
        print(f"  {min(r.get(label, 0.0) for r in runs):7.2f}  {label}")
    if args.layout == "file":
        figures = [per_file(state, args.sample) for _ in range(args.runs)]
        floor = min(f["floor_us"] for f in figures)
        full = min(f["workers_path_us"] for f in figures)
        files = len(list((state / "agents").glob("*/sessions/*.jsonl")))
        print(f"per file over {figures[0]['files']:.0f} transcripts, one process (min of {args.runs}):")
        print(f"  {floor:7.1f} us  floor: open, read, msgspec-decode into a 3-field struct, sum the cost")
        print(f"  {full:7.1f} us  the workers' path: read_whole (decode, fold) + export")
        print(f"  {(full - floor) * files / 1e6:7.2f} s   the fold's share over all {files:,} files (CPU, all workers)")


if __name__ == "__main__":
    main()
