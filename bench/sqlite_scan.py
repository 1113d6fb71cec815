"""Cost of one scan of the real 2026.9.6 SQLite fixture (a copy): nothing changed without and
with a writer holding the database, and right after each one-event commit (medians, ms).

    .venv/bin/python bench/sqlite_scan.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from tests.conftest import REAL_SQLITE, make_store
from tests.watch.test_readonly import OPS_DB, _append_cost, _open_writer


def _median_ms(step: Callable[[], object], repeat: int, before: Callable[[], object] = lambda: None) -> float:
    samples = []
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
    return sorted(samples)[len(samples) // 2] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        shutil.copytree(REAL_SQLITE / "state", state)
        store = make_store(state)
        store.scan()
        print(f"nothing changed, no writer     : {_median_ms(store.scan, args.repeat):.3f} ms")
        writer = _open_writer(state / OPS_DB)
        _append_cost(writer, 0.1)
        store.scan()
        print(f"nothing changed, writer open   : {_median_ms(store.scan, args.repeat):.3f} ms")
        after_commit = _median_ms(store.scan, args.repeat, lambda: _append_cost(writer, 0.1))
        print(f"after a one-event commit       : {after_commit:.3f} ms")
        writer.close()


if __name__ == "__main__":
    main()
