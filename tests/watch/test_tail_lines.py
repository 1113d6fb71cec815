"""A last line without its newline, as a live file and as the persisted index see it."""

from __future__ import annotations

import pickle
from pathlib import Path

from clawstats.core.catalog import Catalog, ModelFacts
from clawstats.core.health import HealthLog
from clawstats.watch.cache import IndexCache
from clawstats.watch.tail import IDLE_POLLS, Tail
from clawstats.watch.tail_image import adopt, export
from tests.core.lines import assistant, jsonl, stamp, usage, with_ids

CALLS = with_ids([assistant(use=usage(10, 5, cost=0.01), ts=stamp(i)) for i in range(3)])


def _calls(tail: Tail) -> int:
    return sum(b.calls for b in tail.stats.buckets.values())


def test_unterminated_line_counts_once_when_its_newline_arrives(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(CALLS[:2], final_newline=False))
    tail, health = Tail(str(path)), HealthLog()
    assert tail.poll(health) and _calls(tail) == 2
    with open(path, "ab") as fh:
        fh.write(b"\n")
    tail.poll(health)
    assert _calls(tail) == 2  # the newline is not a second line
    with open(path, "ab") as fh:
        fh.write(jsonl(CALLS[2:]))
    tail.poll(health)
    assert _calls(tail) == 3 and not health.counters


def test_partial_line_waits_and_a_line_that_goes_on_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    whole = jsonl(CALLS[:1])
    path.write_bytes(whole[:-20])  # the writer is in the middle of the line
    tail, health = Tail(str(path)), HealthLog()
    tail.poll(health)
    assert _calls(tail) == 0
    with open(path, "ab") as fh:
        fh.write(whole[-20:-1])  # complete JSON, newline still missing
    tail.poll(health)
    assert _calls(tail) == 1
    with open(path, "ab") as fh:
        fh.write(b',"more": 1}\n')  # the "line" went on: what was counted was not a line
    tail.poll(health)
    assert _calls(tail) == 0 and health.counters == {"malformed": 1}


def test_image_round_trip_keeps_the_open_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(CALLS[:2], final_newline=False))
    tail = Tail(str(path))
    tail.poll(HealthLog())
    again = adopt(export(tail))
    assert again.open_line and again.offset == tail.offset and again.stats.dump() == tail.stats.dump()
    with open(path, "ab") as fh:
        fh.write(b"\n" + jsonl(CALLS[2:]))
    again.poll(HealthLog())
    assert _calls(again) == 3


def test_an_idle_tail_keeps_nothing_of_a_line_being_written(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(CALLS) * 10)
    tail = Tail(str(path))
    slots = [name for cls in Tail.__mro__ for name in getattr(cls, "__slots__", ())]
    assert len(slots) == 9 and not hasattr(tail, "__dict__")  # 112 bytes a tail, 50,000 tails in a server
    read_before = Tail.counts.bytes_read
    tail.poll(HealthLog())
    assert Tail.counts.bytes_read - read_before == tail.offset == path.stat().st_size
    quiet = tail._mid
    assert quiet is not None and quiet == (b"", False, False, 0)
    assert adopt(pickle.loads(pickle.dumps(export(tail))))._mid is quiet  # a worker's read: the shared tuple
    for _ in range(IDLE_POLLS):
        tail.poll(HealthLog())
    assert tail._mid is None and tail.idle == IDLE_POLLS and tail.packed
    with open(path, "ab") as fh:  # half a line: kept while it is being written
        fh.write(jsonl(CALLS[:1])[:20])
    tail.poll(HealthLog())
    assert tail.pending == jsonl(CALLS[:1])[:20] and tail.idle == 0
    with open(path, "ab") as fh:
        fh.write(jsonl(CALLS[:1])[20:])
    for _ in range(1 + IDLE_POLLS):
        tail.poll(HealthLog())
    assert tail._mid is None and tail.pending == b"" and tail.offset == path.stat().st_size
    assert _calls(tail) == 3 * 10 + 1
    size = tail.offset
    replacement = tmp_path / "new.jsonl"
    replacement.write_bytes(path.read_bytes())
    replacement.replace(path)  # another file: read again from zero, the lifetime count goes on
    read_before = Tail.counts.bytes_read
    tail.poll(HealthLog())
    assert tail.offset == size and Tail.counts.bytes_read - read_before == size


def test_cached_open_line_and_other_prices_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(CALLS[:2], final_newline=False))
    tail = Tail(str(path))
    tail.poll(HealthLog())
    cache_path = tmp_path / "index.sqlite"
    cache = IndexCache(cache_path, identity="prices-1")
    cache.save([tail], [])
    cache.close()
    cache = IndexCache(cache_path, identity="prices-1")
    restored = cache.restore_all().get(tail.path)
    cache.close()
    assert restored is not None and restored.open_line
    with open(path, "ab") as fh:
        fh.write(b"\n" + jsonl(CALLS[2:]))
    restored.poll(HealthLog())
    assert _calls(restored) == 3
    other = Catalog(configured={"openai/gpt-5.2": ModelFacts(prices=(1.0, 2.0, 0.0, 0.0))})
    cache = IndexCache(cache_path, identity=other.identity())
    assert tail.path not in cache.restore_all()  # computed with other prices: read again
    cache.close()
