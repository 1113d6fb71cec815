"""CPU of ``TranscriptStats.apply`` per entry: the hot path of every read and append.

    python bench/apply_cost.py [--sessions 20000] [--files 3000] [--runs 7]

Decodes the first ``--files`` transcripts of a ``bench/sweep.py`` store once, then folds their
entries into fresh accumulators ``--runs`` times; prints the minimum CPU time per entry.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from clawstats.core.records import decode_lines
from clawstats.core.transcript import TranscriptStats

WORK = Path(__file__).resolve().parent / ".work"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20000)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    sessions = WORK / f"sweep-{args.sessions}" / "agents/main/sessions"
    names = sorted(name for name in os.listdir(sessions) if name.endswith(".jsonl"))[: args.files]
    decoded = [decode_lines((sessions / name).read_bytes()) for name in names]
    entries = sum(map(len, decoded))
    best_s = float("inf")
    for _ in range(args.runs):
        started = time.process_time()
        for lines in decoded:
            stats = TranscriptStats()
            for line in lines:
                stats.apply(line)
        best_s = min(best_s, time.process_time() - started)
    print(f"{entries} entries of {len(decoded)} transcripts: {best_s / entries * 1e6:.3f} us CPU per apply")


if __name__ == "__main__":
    main()
