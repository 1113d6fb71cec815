"""Cost of the attribution and foresight step per scan, on synthetic transcript views.

    .venv/bin/python bench/attribution.py [--rows 5000] [--calls 300] [--runs 5]

Measures ``enrich`` (lineage, tree cost, compaction forecast) cold and with its memo warm (what a
scan after one changed session costs), the burn rate (last 24 h of every timeline) and the
``by=parent`` grouping. Min of --runs runs; the views are built in memory, no disk.
"""

from __future__ import annotations

import argparse
import sys
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec

from clawstats.core.enrich import ForecastMemo, calls_of, enrich, group_by_attribution
from clawstats.core.forecast import CompactionConfig
from clawstats.core.snapshot import TranscriptView
from clawstats.core.transcript import TranscriptStats
from clawstats.core.usage import Bucket
from tests.core.test_attribution import row

NOW_MS = 1_796_083_200_000.0


def build(n_rows: int, n_calls: int) -> tuple[list[object], dict[str, TranscriptView]]:
    views: dict[str, TranscriptView] = {}
    rows = []
    for i in range(n_rows):
        ms = array("d", [NOW_MS - (n_calls - k) * 60_000.0 for k in range(n_calls)])  # one call a minute
        ctx = array("I", [10_000 + 50 * k for k in range(n_calls)])
        out = array("I", [100] * n_calls)
        cost = array("d", [0.001 * (k + 1) for k in range(n_calls)])
        bucket = Bucket(calls=n_calls, input=n_calls * 1000, recorded_usd=0.001 * n_calls)
        stats = TranscriptStats()
        for k in range(n_calls):
            stats.tl_f.extend((ms[k], cost[k]))
            stats.tl_i.extend((ctx[k], out[k]))
        views[f"agent:main:s{i}"] = TranscriptView("main", {("2026-12-01", "m/x"): bucket}, ((), ()), stats, n_calls)
        parent = f"agent:main:s{i - 1}" if i % 10 else None  # trees of ten
        rows.append(msgspec.structs.replace(row(f"agent:main:s{i}", 0.3, parent=parent), context_window=128_000))
    return rows, views


def best(runs: int, fn: object) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    rows, views = build(a.rows, a.calls)
    config = CompactionConfig()
    cold = best(a.runs, lambda: enrich(rows, views, config, {}))  # type: ignore[arg-type]
    memo: ForecastMemo = {}
    enrich(rows, views, config, memo)  # type: ignore[arg-type]
    warm = best(a.runs, lambda: enrich(rows, views, config, memo))  # type: ignore[arg-type]
    transcripts = [("main", view) for view in views.values()]
    burn = best(a.runs, lambda: sum(1 for _ in calls_of(transcripts, NOW_MS - 86_400_000.0)))
    parent = best(a.runs, lambda: group_by_attribution(rows, views, transcripts, "parent"))  # type: ignore[arg-type]
    print(f"{a.rows} rows x {a.calls} calls: enrich cold {cold * 1000:.0f} ms, warm {warm * 1000:.0f} ms; ")
    print(f"burn-rate calls (24 h) {burn * 1000:.0f} ms; by=parent {parent * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
