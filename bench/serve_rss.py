"""RSS of ``clawstats serve --no-cache`` once it serves every row, and after one full ``GET``.

Usage: ``bench/serve_rss.py STORE [--clawstats PATH] [--cache-dir DIR]``. Starts the server
(``--no-cache``; with ``--cache-dir``, twice with its persisted index there, emptied first: a
first start that writes it and a warm one) on a free port, waits
until ``/healthz`` answers 200 (the first snapshot holds every row), waits two seconds, reads
``VmRSS``; then ``GET /api/sessions`` (all rows: the encoded body is cached) and reads ``VmRSS``
and ``VmHWM`` again. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.live import cpu_s
from bench.sweep import CLAWSTATS, start_serve, vm, wait_rows


def measure(store: Path, clawstats: str, cache_dir: Path | None = None) -> dict[str, float]:
    started = time.perf_counter()
    proc, url = start_serve(store, clawstats, cache_dir)
    out: dict[str, float] = {}
    try:
        with httpx.Client(timeout=300) as client:
            out["rows"] = wait_rows(client, url)
            out["ready_s"] = time.perf_counter() - started
            out["ready_cpu_s"] = cpu_s(proc.pid)
            time.sleep(2.0)
            out["rss_ready_mib"] = vm(proc.pid, "VmRSS")
            assert client.get(url + "/api/sessions").status_code == 200
            time.sleep(1.0)
            out["rss_after_get_mib"] = vm(proc.pid, "VmRSS")
            out["peak_mib"] = vm(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--clawstats", default=CLAWSTATS)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="serve with its persisted index here (as by default), twice: a first start that writes it, a warm one",
    )
    args = parser.parse_args()
    if args.cache_dir is None:
        result = measure(args.store, args.clawstats)
        print(json.dumps({"clawstats": args.clawstats, "store": str(args.store), **result}))
        return
    shutil.rmtree(args.cache_dir, ignore_errors=True)
    for start in ("first", "warm"):
        result = measure(args.store, args.clawstats, args.cache_dir)
        print(json.dumps({"clawstats": args.clawstats, "store": str(args.store), "start": start, **result}))


if __name__ == "__main__":
    main()
