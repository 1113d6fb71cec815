"""clawstats side by side with ccusage and the floors, on generated OpenClaw-shaped stores.

    python bench/run.py --size small|medium|large [--runs 3] [--skip-live]

Sizes: small ~100 MB / 200 sessions, medium ~500 MB / 1,000 sessions, large ~2 GB / 2,000
sessions (generated on demand under bench/.work/, kept between runs). ccusage (pinned) is
installed from the npm registry into bench/.work/node on first use. Every figure is printed as
a ratio to a peer measured in the same run; wall times are min/median of --runs runs, peak RSS
is per process (wait4). The page cache is warm for every contender (each reads once first).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
CCUSAGE_VERSION = "20.0.24"  # the last release with a linux-x64 native binary on the registry
SIZES = {"small": (200, 200), "medium": (1000, 200), "large": (2000, 400)}
sys.path.insert(0, str(ROOT))

from bench.gen_corpus import generate  # noqa: E402

BASELINE = r"""
import json, sys, glob
cost = 0.0
for path in sorted(glob.glob(sys.argv[1] + "/agents/*/sessions/*.jsonl*")):
    with open(path, "rb") as fh:
        for raw in fh:
            entry = json.loads(raw)
            message = entry.get("message") or {}
            if entry.get("type") == "message" and message.get("role") == "assistant":
                cost += ((message.get("usage") or {}).get("cost") or {}).get("total") or 0.0
print(cost)
"""


GNU_TIME = shutil.which("time") or "/usr/bin/time"


def run(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS KiB, stdout) of one process tree's largest member.

    Peak RSS comes from GNU time (Debian's ``time``): a child's own ``ru_maxrss`` from wait4
    would include the pages of this Python process it was forked from.
    """
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss:
        started = time.perf_counter()
        proc = subprocess.run([GNU_TIME, "-f", "%M", "-o", rss.name, *cmd], stdout=out, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        if proc.returncode:
            raise SystemExit(f"{cmd[0]} failed ({proc.returncode})")
        out.seek(0)
        text = out.read().decode()
        peak_kib = int(rss.read().split()[-1])
    return wall, peak_kib, text


def repeat(cmd: list[str], runs: int) -> dict[str, float | str]:
    run(cmd)  # warm the page cache and the binary
    walls, rss, out = [], [], ""
    for _ in range(runs):
        wall, peak, out = run(cmd)
        walls.append(wall)
        rss.append(peak)
    return {"min": min(walls), "median": statistics.median(walls), "rss_mib": max(rss) / 1024, "out": out}


def ccusage() -> Path | None:
    binary = WORK / "node" / "node_modules" / ".bin" / "ccusage"
    if binary.exists():
        return binary
    if shutil.which("npm") is None:
        print("npm not found: ccusage comparison skipped")
        return None
    (WORK / "node").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "npm",
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(WORK / "node"),
            f"ccusage@{CCUSAGE_VERSION}",
        ],
        check=True,
    )
    return binary


def corpus(size: str) -> Path:
    sessions, turns = SIZES[size]
    path = WORK / f"corpus-{size}"
    marker = path / ".generated.json"
    if not marker.exists():
        shutil.rmtree(path, ignore_errors=True)
        print(f"generating the {size} corpus ({sessions} sessions)...", flush=True)
        facts = generate(path, sessions, turns)
        marker.write_text(json.dumps(facts))
    return path


def fmt(result: dict[str, float | str]) -> str:
    return f"min {result['min']:.3f} s, median {result['median']:.3f} s, peak RSS {result['rss_mib']:.0f} MiB"


def append_one_percent(path: Path) -> int:
    files = sorted(path.glob("agents/*/sessions/*.jsonl"))
    picked = files[:: max(1, len(files) // max(1, len(files) // 100))][: max(1, len(files) // 100)]
    line = {
        "type": "message",
        "id": "benchappend",
        "parentId": None,
        "timestamp": "2026-11-25T00:00:00.000Z",
        "message": {
            "role": "assistant",
            "content": [{"type": "text", "text": "appended"}],
            "provider": "mock",
            "model": "mock-large",
            "usage": {"input": 100, "output": 1, "cacheRead": 0, "cacheWrite": 0, "cost": {"total": 0.001}},
            "stopReason": "stop",
            "timestamp": 1795564800000,
        },
    }
    for file in picked:
        with open(file, "a") as fh:
            fh.write(json.dumps(line) + "\n")
    return len(picked)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    store = corpus(args.size)
    facts = json.loads((store / ".generated.json").read_text())
    clawstats = [str(ROOT / ".venv" / "bin" / "clawstats"), "sessions", "--state-dir", str(store), "--json"]
    print(f"corpus {args.size}: {facts['files']} transcripts, {facts['lines']} lines, {facts['bytes'] / 1e6:.0f} MB")
    print(f"machine: {os.cpu_count()} cores; runs per contender: {args.runs} (after one warm-up)")

    files = sorted(str(p) for p in store.glob("agents/*/sessions/*.jsonl*"))
    cat = repeat(["sh", "-c", 'cat "$@" > /dev/null', "cat", *files], args.runs)
    cold = repeat([*clawstats, "--no-cache"], args.runs)
    base = repeat([sys.executable, "-c", BASELINE, str(store)], max(1, args.runs - 1))
    results = {"cat": cat, "clawstats": cold, "json.loads": base}
    binary = ccusage()
    if binary is not None:
        results["ccusage"] = repeat(
            [str(binary), "openclaw", "session", "--json", "--offline", "--open-claw-path", str(store)], args.runs
        )

    ours = json.loads(str(cold["out"]))["totals"]["totalCost"]
    print(f"\ncold full scan ({facts['bytes'] / 1e6:.0f} MB):")
    for name, result in results.items():
        print(f"  {name:11} {fmt(result)}")
    if "ccusage" in results:
        theirs = json.loads(str(results["ccusage"]["out"]))["totals"]["totalCost"]
        agree = abs(ours - theirs) <= 1e-6 * max(1.0, abs(ours))
        print(f"  total cost: clawstats {ours:.7f}, ccusage {theirs:.7f} -> {'equal' if agree else 'DIFFERENT'}")
        peer = results["ccusage"]
        print(
            f"  clawstats / ccusage: wall {float(cold['median']) / float(peer['median']):.2f}x (median), "
            f"{float(cold['min']) / float(peer['min']):.2f}x (min); "
            f"peak RSS {float(cold['rss_mib']) / float(peer['rss_mib']):.2f}x"
        )
    print(f"  clawstats / json.loads loop: {float(cold['median']) / float(base['median']):.2f}x")
    print(f"  clawstats / cat: {float(cold['median']) / float(cat['median']):.1f}x")

    with tempfile.TemporaryDirectory() as cache_dir:
        cached = [*clawstats, "--cache-dir", cache_dir]
        run(cached)  # builds the index
        warm = repeat(cached, args.runs)
        print("\nwarm restart with the persisted index:")
        print(f"  unchanged store: {fmt(warm)}  -> {float(warm['median']) / float(cold['median']):.3f}x cold")
        appended = append_one_percent(store)
        after, peak, _ = run(cached)
        print(
            f"  after appending to {appended} files (1 %): {after:.3f} s, peak RSS {peak / 1024:.0f} MiB"
            f" -> {after / float(cold['median']):.3f}x cold"
        )
    # the appended lines stay: regenerate with `rm -r bench/.work/corpus-*` for pristine numbers
    marker = store / ".generated.json"
    marker.write_text(json.dumps({**facts, "appended": facts.get("appended", 0) + 1}))


if __name__ == "__main__":
    main()
