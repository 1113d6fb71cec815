"""What an idle transcript's tail keeps: its offset as its identity's size, nothing mid-line."""

from __future__ import annotations

import pickle
from pathlib import Path

from clawstats.core.health import HealthLog
from clawstats.core.snapshot import TranscriptView
from clawstats.core.transcript import TranscriptStats
from clawstats.core.transcript_image import extra_of, without_extra
from clawstats.watch.cache import IndexCache
from clawstats.watch.identity import HEAD_BYTES, FileId, head_digest
from clawstats.watch.tail import AT_SIZE, IDLE_POLLS, Tail
from clawstats.watch.tail_image import adopt, export
from tests.core.lines import assistant, jsonl, stamp, usage, with_ids

CALLS = with_ids([assistant(use=usage(10, 5, cost=0.01), ts=stamp(i)) for i in range(3)])


def _calls(tail: Tail) -> int:
    return sum(b.calls for b in tail.current().buckets.values())


def _idle(path: Path) -> Tail:
    tail = Tail(str(path))
    for _ in range(1 + IDLE_POLLS):
        tail.poll(HealthLog())
    return tail


def test_an_idle_file_keeps_its_offset_as_its_size(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(CALLS) * 10)  # past 256 bytes: an int the interpreter does not cache
    tail = _idle(path)
    assert tail._offset == AT_SIZE and tail.offset == path.stat().st_size and tail.packed
    again = adopt(pickle.loads(pickle.dumps(export(tail))))  # as a worker hands it back
    assert again._offset == AT_SIZE and again.offset == tail.offset
    with open(path, "ab") as fh:
        fh.write(jsonl(CALLS[:1]))
    assert tail.poll(HealthLog()) and tail.offset == path.stat().st_size and _calls(tail) == 31
    assert tail._offset == AT_SIZE  # read to the end again


def test_an_idle_file_replaced_or_truncated_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(CALLS) * 10)
    tail = _idle(path)
    path.write_bytes(jsonl(CALLS[:1]))  # truncated in place: shorter than the offset
    assert tail.poll(HealthLog()) and _calls(tail) == 1 and tail.generation == 1
    assert tail.offset == path.stat().st_size
    for _ in range(IDLE_POLLS):
        tail.poll(HealthLog())
    size = path.stat().st_size
    other = tmp_path / "new.jsonl"
    other.write_bytes(path.read_bytes())  # the same bytes, another file
    other.replace(path)
    assert tail.poll(HealthLog()) and tail.generation == 2 and tail.offset == size


def test_a_file_grown_while_read_keeps_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(CALLS) * 10)
    tail = _idle(path)
    identity = tail.identity
    tail.file_id = None  # a new identity: the offset is taken back from the one going
    assert tail._offset == path.stat().st_size and tail.identity != identity
    tail.identity = identity[:16] + (7).to_bytes(8, "little") + identity[24:]  # another size seen
    tail.share_offset()
    assert tail._offset == path.stat().st_size  # not the identity's: kept


def _restored(tmp_path: Path) -> tuple[Path, Tail, Tail]:
    """An idle tail of a 30-call file, and that tail saved to the persisted index and restored."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(CALLS) * 10)
    tail = _idle(path)
    cache = IndexCache(tmp_path / "index.sqlite")
    cache.save([tail], [])
    restored = cache.restore_all()[str(path)]
    cache.close()
    return path, tail, restored


def test_a_restored_tail_keeps_its_offset_as_its_size(tmp_path: Path) -> None:
    path, _tail, restored = _restored(tmp_path)
    assert restored._offset == AT_SIZE and restored.offset == path.stat().st_size


def test_views_without_compactions_or_children_share_their_parts(tmp_path: Path) -> None:
    one, two = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    one.write_bytes(jsonl(CALLS))
    two.write_bytes(jsonl(CALLS[:2]))
    first, second = _idle(one).view("main"), _idle(two).view("main")
    assert len(TranscriptView.__struct_fields__) == 6  # 64 bytes a view, not 80
    assert first.parts is second.parts and first.compactions == () and first.spawned == ()
    live = Tail(str(one))
    live.poll(HealthLog())
    assert live.stats is not None and live.view("main").parts is first.parts


def test_an_idle_file_keeps_its_identity_in_its_packed_image(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(CALLS) * 10)
    tail = _idle(path)
    fresh = Tail(str(path))
    fresh.file_id = tail.file_id
    assert tail._ident is None and tail.identity == extra_of(tail.image()) and len(tail.identity) == 42
    assert tail.dump() == without_extra(tail.image()) and TranscriptStats.check(tail.image()) is None
    assert tail.file_id == fresh.file_id and tail.peek().entries == 30
    again = adopt(pickle.loads(pickle.dumps(export(tail))))  # a worker's: adopted as it carries it
    assert again._ident is None and again.identity == tail.identity and again.dump() == tail.dump()
    assert tail.view("main").buckets == TranscriptStats.load(tail.dump()).buckets


def test_an_idle_file_rewritten_in_place_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(CALLS) * 10)
    tail = _idle(path)
    assert tail._ident is None
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"cost"', b'"cosT"', 1))  # the same size, another head, in place
    assert tail.poll(HealthLog()) and tail.generation == 1 and tail.offset == len(data)
    assert tail.head == head_digest(path.read_bytes()[:HEAD_BYTES]) != head_digest(data[:HEAD_BYTES])
    assert tail._ident is None and tail.identity == extra_of(tail.image())  # read whole: packed at once
    with open(path, "ab") as fh:
        fh.write(jsonl(CALLS[:1]))
    assert tail.poll(HealthLog()) and tail._ident is not None and not tail.packed  # being written to
    assert tail.offset == path.stat().st_size


def test_a_tail_restored_from_the_index_keeps_its_identity_in_its_image(tmp_path: Path) -> None:
    path, tail, restored = _restored(tmp_path)
    assert restored._ident is None and restored.identity == tail.identity
    assert not restored.poll(HealthLog())  # unchanged: nothing read
    with open(path, "ab") as fh:
        fh.write(jsonl(CALLS[:1]))
    assert restored.poll(HealthLog()) and _calls(restored) == 31


def test_identified_says_whether_a_file_id_is_known(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(CALLS) * 10)
    fresh = Tail(str(path))
    assert not fresh.identified and fresh.file_id is None
    tail = _idle(path)
    assert tail._ident is None and tail.identified and tail.file_id is not None
    tail.file_id = None  # (a new price: read again from the start)
    assert not tail.identified and tail.file_id is None


def test_restored_cursors_of_one_database_share_its_identity(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    db.write_bytes(b"x" * 4096)
    cursors = []
    for sid in ("a", "b"):
        tail = Tail(f"main/{sid}")  # a SQLite cursor: the database's identity, no head
        tail.file_id = FileId.of(db.stat())
        tail.offset, tail.revision = 3, 1
        tail.pack()
        cursors.append(tail)
    assert cursors[0].identity is cursors[1].identity
    cache = IndexCache(tmp_path / "index.sqlite")
    cache.save(cursors, [])
    restored = cache.restore_all()
    cache.close()
    one, two = restored["main/a"], restored["main/b"]
    assert one.identity is two.identity and one.offset == two.offset == 3
    fid = cursors[0].file_id
    assert fid is not None and one.file_id == FileId(fid.dev, fid.ino, -1, -1)  # (not at the offset: read past it)
