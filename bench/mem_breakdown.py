"""What one idle session costs in memory, component by component, after a cold scan in-process.

    python bench/mem_breakdown.py --sessions 20000 [--top 25] [--store DIR]

Two views of the same heap: tracemalloc (everything allocated during ``open_store`` +
``scan()``, grouped by the line that allocated it; the total is the Python heap the store keeps)
and a walk of the store's objects with ``sys.getsizeof`` by component, each object counted once,
in the first component that reaches it (so a string shared by the index row and the built row
counts for the index row). Figures are bytes per session (served rows).
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import tracemalloc
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from clawstats.api.events import Hub
from clawstats.settings import Settings
from clawstats.watch.engine import open_store

WORK = Path(__file__).resolve().parent / ".work"  # the stores of bench/sweep.py
#: Objects owned elsewhere (shared by every session): never walked into.
_STOP = ("Catalog", "HealthLog", "Pricer", "function", "method", "builtin_function_or_method", "Snapshot")


def deep(obj: Any, seen: set[int], stop: tuple[type, ...] = ()) -> int:
    """sys.getsizeof of ``obj`` and everything it reaches that ``seen`` has not counted yet."""
    total = 0
    todo = [obj]
    while todo:
        item = todo.pop()
        if id(item) in seen or item is None or isinstance(item, bool | type):
            continue
        if type(item).__name__ in _STOP or (stop and isinstance(item, stop)):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, str | bytes | int | float | array):
            continue
        if isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            todo.extend(item)
        else:
            for name in _fields(type(item)):
                todo.append(getattr(item, name, None))
            if hasattr(item, "__dict__"):
                todo.append(item.__dict__)
    return total


def _fields(cls: type) -> Iterable[str]:
    fields = getattr(cls, "__struct_fields__", ())
    yield from fields if isinstance(fields, tuple) else ()
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        yield from ((slots,) if isinstance(slots, str) else slots)


def walk(store: Any, rows: int) -> list[tuple[str, float]]:
    """Bytes per session by component, in the order the walk counts them."""
    from clawstats.core.transcript import TranscriptStats
    from clawstats.watch.tail import Tail

    seen: set[int] = set()
    out: list[tuple[str, float]] = []

    def add(name: str, objs: Iterable[Any], stop: tuple[type, ...] = ()) -> None:
        out.append((name, sum(deep(o, seen, stop) for o in objs) / rows))

    tails = [tail for agent in store.agents.values() for tail in agent.tails.values()]
    # an idle transcript keeps its statistics packed (their dump): read as kept, never unpacked here
    states = [getattr(tail, "_state", None) or tail.stats for tail in tails]
    stats = [s for s in states if isinstance(s, TranscriptStats)]
    packed = [s for s in states if isinstance(s, bytes)]
    out.append(
        (f"packed statistics (bytes; {len(packed)} of {len(tails)} tails)", sum(map(sys.getsizeof, packed)) / rows)
    )
    seen.update(id(s) for s in packed)
    out.append(("TranscriptStats object (slots)", sum(sys.getsizeof(s) for s in stats) / rows))
    seen.update(id(s) for s in stats)
    arrays = [f for f in _fields(type(stats[0])) if isinstance(getattr(stats[0], f), array)] if stats else []
    for field in arrays:
        add(f"  .{field}", [getattr(s, field) for s in stats])
    add("  .buckets (dict, keys, Bucket)", [s.buckets for s in stats])
    add("  .compactions, .spawned (lists)", [s.compactions for s in stats] + [s.spawned for s in stats])
    add("  strings (session id, timestamps, model)", [getattr(s, f, None) for s in stats for f in _STR_FIELDS])
    add("  other fields (ints, floats)", [getattr(s, f) for s in stats for f in _fields(type(s)) if f != "price"])
    out.append(("Tail object (slots)", sum(sys.getsizeof(t) for t in tails) / rows))
    seen.update(id(t) for t in tails)
    if tails and hasattr(tails[0], "_ident"):  # as kept: an idle file's in its packed image (None here)
        add("  .identity (file id + head digest, as kept)", [t._ident for t in tails])
    elif tails and hasattr(tails[0], "identity"):  # file id and head digest in one bytes object
        add("  .identity (file id + head digest)", [t.identity for t in tails])
    else:
        add("  .head", [t.head for t in tails])
        add("  .file_id (FileId)", [t.file_id for t in tails])
    add("  .path", [t.path for t in tails])
    add(
        "  other (pending, ints)",
        [getattr(t, f) for t in tails for f in _fields(type(t)) if f not in ("stats", "_state", "identity", "_ident")],
    )
    sources = [src for agent in store.agents.values() for src in agent.sources.values()]
    add("Source (object, key, ids)", [(s.key, s.agent_id, s.stats_id, s.archived_from) for s in sources])
    # a file agent's plan keeps the sources off their usual transcript only (the others are made
    # when asked: not kept)
    kept_sources = [
        src
        for agent in store.agents.values()
        for src in (agent.sources.odd.values() if hasattr(agent.sources, "odd") else agent.sources.values())
    ]
    out.append(("  Source objects (kept)", sum(sys.getsizeof(s) for s in kept_sources) / rows))
    seen.update(id(s) for s in sources)
    add("  IndexRow (decoded sessions.json row)", [s.row for s in sources])
    agents = list(store.agents.values())
    parts = [a.__dict__ if hasattr(a, "__dict__") else a for a in agents]
    add("agent maps (sources, tails, index rows, listing paths, plan sets)", parts)
    publisher = store._publisher
    # main keeps every row as built and as enriched; the branch the enriched rows and (parent, channel) links
    kept = getattr(publisher, "_base_rows", None)
    add("built rows (Publisher._base_rows / _links)", [kept if kept is not None else publisher._links])
    add(
        "enriched rows (RowTable.rows, order)",
        [publisher.table.rows, getattr(publisher.table, "_order", None), publisher.table._ordered],
    )
    add("TranscriptView (joins.tviews)", [store._joins.tviews], (TranscriptStats,))
    add("join maps (refs, sources, rollup)", [store._joins.__dict__], (TranscriptStats, Tail))
    add("RowTable unknown (views: read through the joins)", [publisher.table.__dict__], (TranscriptStats, Tail))
    views = [getattr(publisher, name, None) for name in ("_views", "_unusual")]  # (the rows off their usual stats id)
    add("Layered by_key / views", [publisher._by_key, *views], (TranscriptStats, Tail))
    add("enricher", [publisher.enricher], (TranscriptStats, Tail))
    add("base prompts", [store._bases], (TranscriptStats, Tail))
    snap = store.snapshot
    # as kept: the rows in order and the transcripts are made only when a reader asks (the walk
    # does not make them), and a cold start's ``changed`` is the keys of ``by_key``
    made = [lazy.get() for lazy in (snap.ordered, snap.counted) if lazy.made]
    add("snapshot rows tuple, transcripts (when made), changed, totals", [*made, snap.changed, snap.totals])
    return out


_STR_FIELDS = ("session_id", "first_ts", "last_ts", "model", "current_provider", "current_model_id", "last_id")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-walk", action="store_true")
    parser.add_argument("--store", type=Path, help="another state dir (default: the sweep's of --sessions)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    state = args.store or WORK / f"sweep-{args.sessions}"
    gc.collect()
    tracemalloc.start()
    store = open_store(Settings(state_dir=str(state), no_cache=True), {})
    hub = Hub()
    snapshot = store.scan()
    hub.publish(snapshot)
    gc.collect()
    taken = tracemalloc.take_snapshot()
    rows = len(snapshot.rows)
    stats = taken.statistics("lineno")
    total = sum(s.size for s in stats)
    print(f"{rows} rows; tracemalloc: {total / 2**20:.1f} MiB kept, {total / rows:.0f} B per session")
    for stat in stats[: args.top]:
        frame = stat.traceback[0]
        name = frame.filename.split("clawstats/")[-1]
        print(f"{stat.size / rows:8.0f} B {stat.count / rows:6.2f} blocks  {name}:{frame.lineno}")
    tracemalloc.stop()
    if not args.no_walk:
        print("\nsys.getsizeof walk, bytes per session:")
        grand = 0.0
        for name, size in walk(store, rows):
            grand += size
            print(f"{size:8.0f}  {name}")
        print(f"{grand:8.0f}  walked in all")


if __name__ == "__main__":
    main()
