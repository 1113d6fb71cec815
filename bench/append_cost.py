"""CPU of one append in-process: ``StatsStore.scan`` of the appended path plus the hub's publish.

    python bench/append_cost.py --sessions 50000 --layout file|sqlite [--appends 20]

Uses the stores of ``bench/sweep.py`` (run it first). CPU time, not wall time: less sensitive
to a shared machine than the server's figures. The appended lines stay in the store.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sweep import WORK, Appender
from clawstats.api.alerts import AlertManager
from clawstats.api.events import Hub
from clawstats.core.alerts import AlertRules
from clawstats.settings import Settings
from clawstats.watch.engine import open_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50000)
    parser.add_argument("--layout", choices=["file", "sqlite"], default="file")
    parser.add_argument("--appends", type=int, default=20)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    state = WORK / (f"sweep-{args.sessions}" + ("-sqlite" if args.layout == "sqlite" else ""))
    store = open_store(Settings(state_dir=str(state), no_cache=True), {})
    hub = Hub()
    hub.listeners.append(AlertManager(hub, AlertRules()).on_snapshot)
    hub.publish(store.scan())
    appender = Appender(state, args.layout)
    hint = {str(appender.path)} if args.layout == "file" else set()
    for i in range(3):  # warm-up
        appender.append(990000 + i)
        hub.publish(store.scan(hint))
    started = time.process_time()
    for i in range(args.appends):
        appender.append(990100 + i)
        hub.publish(store.scan(hint))
    per_append_ms = (time.process_time() - started) / args.appends * 1000
    print(f"{args.sessions} sessions, {args.layout}: {per_append_ms:.2f} ms CPU per append (scan + publish)")


if __name__ == "__main__":
    main()
