"""RSS of ``clawstats serve --no-cache`` once it serves every row, and after one full ``GET``.

Usage: ``bench/serve_rss.py STORE [--clawstats PATH]``. Starts the server on a free port, waits
until ``/healthz`` answers 200 (the first snapshot holds every row), waits two seconds, reads
``VmRSS``; then ``GET /api/sessions`` (all rows: the encoded body is cached) and reads ``VmRSS``
and ``VmHWM`` again. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import httpx

CLAWSTATS = str(Path(__file__).resolve().parent.parent / ".venv/bin/clawstats")


def vm_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


def measure(store: Path, clawstats: str) -> dict[str, float]:
    proc = subprocess.Popen(
        [clawstats, "serve", "--state-dir", str(store), "--no-cache", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().split(" on ")[1].split()[0]
    out: dict[str, float] = {}
    try:
        with httpx.Client(timeout=300) as client:
            while True:
                try:
                    health = client.get(url + "/healthz")
                    if health.status_code == 200:
                        out["rows"] = health.json()["sessions"]
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            out["ready_cpu_s"] = cpu_s(proc.pid)
            time.sleep(2.0)
            out["rss_ready_mib"] = vm_mib(proc.pid, "VmRSS")
            assert client.get(url + "/api/sessions").status_code == 200
            time.sleep(1.0)
            out["rss_after_get_mib"] = vm_mib(proc.pid, "VmRSS")
            out["peak_mib"] = vm_mib(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--clawstats", default=CLAWSTATS)
    args = parser.parse_args()
    result = measure(args.store, args.clawstats)
    print(json.dumps({"clawstats": args.clawstats, "store": str(args.store), **result}))


if __name__ == "__main__":
    main()
