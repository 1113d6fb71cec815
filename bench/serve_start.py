"""A cold server's time to its rows against the cold CLI's, in the same minutes (issue 17).

    python bench/serve_start.py STORE [--rounds 3] [--base PATH] [--clawstats PATH]

Each round, alternating: ``clawstats serve --no-cache`` of ``--base`` (another build, e.g. a
wrapper running a ``git archive`` copy; left out when not given) and of ``--clawstats`` until
``/healthz`` answers 200 (the first snapshot holds every row), as ``bench/sweep.py`` polls it
(every 20 ms); then ``/usr/bin/time clawstats sessions --json --no-cache`` of ``--clawstats``.
Wall seconds, the server's CPU at ready (its own and its reaped workers') and its RSS two seconds
after; the minimum of each over the rounds. One untimed CLI read comes first, so the first round's
server does not alone pay for reading the store from disk (the page cache is warm for both). A
shared machine swings walls by 2x: compare the servers' CPU, and walls only within one round.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sweep import CLAWSTATS, start_serve, vm, wait_rows

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_with_children_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(field) for field in fields[11:15]) / TICKS  # utime, stime, cutime, cstime


def serve(store: Path, clawstats: str) -> tuple[float, float, float]:
    """(wall s to the first rows, CPU s then, RSS MiB two seconds later)."""
    started = time.perf_counter()
    proc, url = start_serve(store, clawstats)
    try:
        with httpx.Client(timeout=300) as client:
            wait_rows(client, url, 1)
            wall = time.perf_counter() - started
            cpu = _cpu_with_children_s(proc.pid)
            time.sleep(2.0)
            return wall, cpu, vm(proc.pid, "VmRSS")
    finally:
        proc.terminate()
        proc.wait()


def cli(store: Path, clawstats: str) -> tuple[float, float]:
    """(wall s, user + sys CPU s) of a cold ``sessions --json``, by ``/usr/bin/time``."""
    command = ["/usr/bin/time", "-f", "%e %U %S", clawstats, "sessions", "--json", "--no-cache"]
    done = subprocess.run(
        [*command, "--state-dir", str(store)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True
    )
    wall, user, system = done.stderr.split()[-3:]
    return float(wall), float(user) + float(system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", help="another build's clawstats, served first in each round")
    parser.add_argument("--clawstats", default=CLAWSTATS)
    args = parser.parse_args()
    store = args.store.resolve()
    walls: dict[str, list[float]] = {}
    cli(store, args.clawstats)  # the page cache warm for every round's server and CLI alike
    for round_ in range(args.rounds):
        cells = []
        for label, binary in (("base serve", args.base), ("serve", args.clawstats)):
            if binary is None:
                continue
            wall, cpu, rss = serve(store, binary)
            walls.setdefault(label, []).append(wall)
            cells.append(f"{label} {wall:.2f} s (CPU {cpu:.2f} s, {rss:.1f} MiB)")
        wall, cpu = cli(store, args.clawstats)
        walls.setdefault("cli", []).append(wall)
        cells.append(f"cli {wall:.2f} s (CPU {cpu:.2f} s)")
        load = os.getloadavg()[0]
        print(f"round {round_} {time.strftime('%H:%M:%S')}: " + ", ".join(cells) + f", load {load:.2f}", flush=True)
    print(store.name, " | ".join(f"{k}: min {min(v):.2f} s" for k, v in walls.items()))


if __name__ == "__main__":
    main()
