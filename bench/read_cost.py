"""CPU of a cold read per transcript: what a worker does for each file (``read_whole`` + ``export``).

    python bench/read_cost.py [--sessions 50000] [--files 2000] [--runs 15] [--count]

Reads the first ``--files`` transcripts of a ``bench/sweep.py`` store whole ``--runs`` times and
prints the minimum CPU time per file, that of the fold alone (the entries decoded once before),
and a floor: opening, reading and decoding each file into a three-field struct and summing its
cost, what reading costs before any statistics are kept.
CPU time still swings by a third on a shared machine: ``--count`` also prints what does not, the
Python calls and bytecodes per file (``sys.settrace``, on 300 files). To compare with another commit,
run its code on the same store: ``git archive <commit> clawstats | tar -x -C <dir>`` then
``PYTHONPATH=<dir> python bench/read_cost.py`` (the first line names the code measured).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec

import clawstats
from clawstats.core.records import decode_lines
from clawstats.core.transcript import TranscriptStats
from clawstats.watch.tail_image import export, read_whole

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


def _fold(entries: list[Any]) -> None:
    stats = TranscriptStats()
    if hasattr(stats, "fold"):  # older code: apply per entry
        stats.fold(entries)
    else:
        for entry in entries:
            stats.apply(entry)
    stats.settle()


def _min_cpu_us(work: Callable[[], None], runs: int, files: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best / files * 1e6


def _counts(work: Callable[[], None], files: int) -> str:
    """Python calls and bytecodes executed by ``work``, per file."""
    calls = opcodes = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal opcodes
        if event == "opcode":
            opcodes += 1
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal calls
        calls += 1
        frame.f_trace_opcodes = True
        return local

    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(None)
    return f"{calls / files:.1f} Python calls, {opcodes / files:.0f} bytecodes per file"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50000)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--count", action="store_true", help="also count calls and bytecodes (deterministic)")
    args = parser.parse_args()
    sessions = WORK / f"sweep-{args.sessions}" / "agents/main/sessions"
    names = sorted(name for name in os.listdir(sessions) if name.endswith(".jsonl"))[: args.files]
    paths = [str(sessions / name) for name in names]
    decoded = [decode_lines((sessions / name).read_bytes()) for name in names]

    def reads(paths: list[str] = paths) -> None:
        for path in paths:
            export(read_whole(path, 1 << 26)[0])

    def floors(paths: list[str] = paths) -> None:
        for path in paths:
            floor_read(path)

    def folds(decoded: list[list[Any]] = decoded) -> None:
        for entries in decoded:
            _fold(entries)

    print(f"code: {Path(clawstats.__file__).parent}")
    whole = _min_cpu_us(reads, args.runs, len(paths))
    fold = _min_cpu_us(folds, args.runs, len(paths))
    floor = _min_cpu_us(floors, args.runs, len(paths))
    print(f"{len(paths)} files of sweep-{args.sessions}: whole read {whole:.1f} us CPU per file, fold {fold:.1f} us")
    print(f"floor (open, read, msgspec-decode into a 3-field struct, sum the cost): {floor:.1f} us per file")
    if args.count:
        few = min(300, len(paths))
        print(f"whole read: {_counts(lambda: reads(paths[:few]), few)}")
        print(f"fold:       {_counts(lambda: folds(decoded[:few]), few)}")


if __name__ == "__main__":
    main()
