"""An idle small transcript packed without its context segment, and read again from its start
when it grows: real files, compared to the bit with a fresh read of the whole file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clawstats.core.health import HealthLog
from clawstats.core.records import decode_line
from clawstats.core.transcript import TranscriptStats
from clawstats.watch import tail as tail_module
from clawstats.watch.identity import HEAD_BYTES
from clawstats.watch.tail import Tail
from tests.conftest import OPS_TRANSCRIPT, SMALL_STATE, make_store
from tests.core.lines import (
    append_events,
    assistant,
    current_session_id,
    jsonl,
    live_call,
    sqlite_path,
    stamp,
    usage,
    user,
    with_ids,
    writer,
)

REAL = (SMALL_STATE / OPS_TRANSCRIPT).read_bytes()
LINES = REAL.splitlines(keepends=True)
COMPACTION = next(i for i, raw in enumerate(LINES) if json.loads(raw)["type"] == "compaction")
BAD = b'{"type": "message", "message": \n'


def fresh(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, dict[str, int]]:
    """A whole read of the file as it is now, its segment kept: (its dump, its health counters)."""
    with monkeypatch.context() as patch:
        patch.setattr(tail_module, "REREAD_MAX_BYTES", 0)
        tail, health = Tail(str(path)), HealthLog()
        tail.poll(health)
        return tail.dump(), health.counters


def packed_read(path: Path) -> bytes:
    """A whole read of the file as it is now, packed as an idle one is."""
    tail = Tail(str(path))
    tail.poll(HealthLog())
    return tail.dump()


def idle(path: Path, data: bytes) -> tuple[Tail, HealthLog]:
    """A tail that read ``data`` and is packed, as a cold read leaves an idle transcript."""
    path.write_bytes(data)
    tail, health = Tail(str(path)), HealthLog()
    tail.poll(health)
    assert tail.packed
    return tail, health


def segless(tail: Tail) -> bool:
    return TranscriptStats.load(tail.dump()).seg_chars is not None


def test_an_idle_small_transcript_is_packed_without_its_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.jsonl"
    tail, _health = idle(path, REAL)
    full, _ = fresh(path, monkeypatch)
    loaded, whole = TranscriptStats.load(tail.dump()), TranscriptStats.load(full)
    assert loaded.seg_chars is not None and not loaded.seg and len(whole.seg) > 0
    assert len(tail.dump()) <= len(full) - 4 * len(whole.seg)  # the segment's words, not written
    # what readers read of it is unchanged: the context and the characters since the reset
    assert loaded.context() == whole.context() and loaded.chars_since_reset() == whole.chars_since_reset()
    with pytest.raises(ValueError, match="segment"):  # read, never continued
        loaded.apply(decode_line(LINES[-1]))


def test_a_big_transcript_keeps_its_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tail_module, "REREAD_MAX_BYTES", len(REAL) - 1)
    tail, health = idle(tmp_path / "t.jsonl", REAL)
    assert not segless(tail)
    rereads = Tail.rereads
    with open(tail.path, "ab") as fh:
        fh.write(LINES[5])
    assert tail.poll(health) and Tail.rereads == rereads


@pytest.mark.parametrize(
    ("cut", "extra"),
    [
        (len(LINES) - 1, b""),  # a plain line after the re-read
        (COMPACTION, b""),  # the compaction comes after the re-read: its estimate needs the segment
        (COMPACTION + 1, b""),  # the next call after a compaction read before
        (8, BAD),  # a malformed line among the new ones
        (len(LINES) - 1, b"\n" + BAD + b"  \n"),
    ],
)
def test_appends_after_a_segmentless_image_equal_a_fresh_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: int, extra: bytes
) -> None:
    path = tmp_path / "t.jsonl"
    tail, health = idle(path, b"".join(LINES[:cut]))
    assert segless(tail)
    rereads, generation = Tail.rereads, tail.generation
    with open(path, "ab") as fh:
        fh.write(extra + b"".join(LINES[cut:]))
    assert tail.poll(health)
    assert Tail.rereads == rereads + 1 and tail.generation == generation
    expected, counters = fresh(path, monkeypatch)
    assert tail.stats.dump() == expected
    assert health.counters == counters  # no line counted twice


def test_a_malformed_line_read_before_is_not_counted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.jsonl"
    tail, health = idle(path, b"".join(LINES[:6]) + BAD + b"".join(LINES[6:10]))
    assert health.counters and segless(tail)
    before = dict(health.counters)
    with open(path, "ab") as fh:
        fh.write(b"".join(LINES[10:]))
    assert tail.poll(health)
    expected, counters = fresh(path, monkeypatch)
    assert tail.stats.dump() == expected and health.counters == counters == before


def test_a_branch_switch_after_the_reread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = with_ids(
        [
            user("first question", ts=stamp(0)),
            assistant(use=usage(1000, 50, cost=0.01), ts=stamp(1), content="x" * 400),
            user("second question " * 20, ts=stamp(2)),
            assistant(use=usage(1300, 60, cost=0.02), ts=stamp(3)),
        ]
    )
    path = tmp_path / "t.jsonl"
    tail, health = idle(path, jsonl(lines))
    # an edit of the second question: a new branch from the first answer (e0001)
    branch = {**user("edited", ts=stamp(4)), "id": "b0000", "parentId": "e0001"}
    call = {**assistant(use=usage(1100, 20, cost=0.03), ts=stamp(5)), "id": "b0001", "parentId": "b0000"}
    with open(path, "ab") as fh:
        fh.write(jsonl([branch, call]))
    rereads = Tail.rereads
    assert tail.poll(health) and Tail.rereads == rereads + 1
    expected, _ = fresh(path, monkeypatch)
    assert tail.stats.dump() == expected
    assert (
        TranscriptStats.load(expected).seg[0::3].tolist() == TranscriptStats.load(tail.stats.dump()).seg[0::3].tolist()
    )


def test_a_reset_with_no_call_since_reads_the_same_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = with_ids(
        [
            user("hi", ts=stamp(0)),
            assistant(use=usage(2000, 10, cost=0.01), ts=stamp(1)),
            {"type": "reset", "timestamp": stamp(2)},
            user("a fresh start " * 40, ts=stamp(3)),
        ]
    )
    path = tmp_path / "t.jsonl"
    tail, health = idle(path, jsonl(lines))
    expected, _ = fresh(path, monkeypatch)
    packed, whole = tail.current(), TranscriptStats.load(expected)
    assert packed.seg_chars == whole.chars_since_reset() > 500
    assert packed.context() == whole.context() and packed.context()[1] == "estimate"
    with open(path, "ab") as fh:
        fh.write(jsonl([{**user("more", ts=stamp(4)), "id": "m0000", "parentId": "e0003"}]))
    assert tail.poll(health)
    assert tail.stats.dump() == fresh(path, monkeypatch)[0]


def test_a_view_made_before_the_reread_keeps_its_timeline(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    tail, health = idle(path, b"".join(LINES[:20]))
    assert segless(tail)
    view = tail.view("ops")
    before = [list(part) for part in view.timeline()]
    assert before[0]
    with open(path, "ab") as fh:
        fh.write(b"".join(LINES[20:]))
    assert tail.poll(health)
    assert [list(part) for part in view.timeline()] == before  # same generation: its calls, unchanged
    assert tail.stats.calls > len(before[0])


def test_a_file_replaced_or_truncated_meanwhile_is_read_again_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.jsonl"
    tail, health = idle(path, b"".join(LINES[:20]))
    rereads, generation = Tail.rereads, tail.generation
    path.write_bytes(b"".join(LINES[:12]))  # truncated in place
    assert tail.poll(health) and tail.generation == generation + 1 and Tail.rereads == rereads
    assert tail.dump() == packed_read(path)
    # rewritten in place past its head, a byte longer below the offset, then grown: the lines up
    # to the offset no longer end there, so the file is read again from the start
    tail, health = idle(path, b"".join(LINES[:20]))
    rereads, generation = Tail.rereads, tail.generation
    assert len(b"".join(LINES[:10])) > HEAD_BYTES
    path.write_bytes(b"".join(LINES[:10]) + b"{ " + b"".join(LINES[10:])[1:])
    assert tail.poll(health) and Tail.rereads == rereads + 1 and tail.generation == generation + 1
    assert tail.dump() == packed_read(path)  # read whole: packed at once


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(REAL) - 1), max_size=8))
def test_packed_between_random_appends_equals_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cuts: list[int]
) -> None:
    path = tmp_path / "inc.jsonl"
    path.write_bytes(b"")
    tail, health = Tail(str(path)), HealthLog()
    previous, rereads, expected_rereads = 0, Tail.rereads, 0
    for cut in [*sorted(set(cuts)), len(REAL)]:
        tail.pack()  # idle between appends: without its segment, read again on the next
        expected_rereads += segless(tail) and cut > previous
        with open(path, "ab") as fh:
            fh.write(REAL[previous:cut])
        previous = cut
        tail.poll(health)
    assert Tail.rereads - rereads == expected_rereads
    if tail.packed:  # one read, whole (no cut, or none past a partial first line)
        assert tail.dump() == packed_read(path)
    else:
        expected, counters = fresh(path, monkeypatch)
        assert tail.stats.dump() == expected and health.counters == counters == {}


def test_an_appended_small_transcript_packs_without_its_segment_once_idle(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    tail, health = idle(path, b"".join(LINES[:10]))
    with open(path, "ab") as fh:
        fh.write(b"".join(LINES[10:]))
    assert tail.poll(health) and not tail.packed
    while not tail.packed:  # polls finding it unchanged (IDLE_POLLS), as the safety sweep's
        assert not tail.poll(health)
    assert segless(tail)


#: Real lines with a malformed one, a line over the limit below (4,000 bytes), one without its
#: newline at the end: the replay must end where the first reads did (offset, skipping, open line).
ODD = b"".join(LINES[:9]) + BAD + b"".join(LINES[9:30]) + b"".join(LINES[30:]).rstrip(b"\n")
ODD_MAX_LINE_BYTES = 4000


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(ODD) - 1), max_size=8))
def test_odd_lines_packed_between_random_appends_equal_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cuts: list[int]
) -> None:
    assert any(len(raw) > ODD_MAX_LINE_BYTES for raw in LINES)
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"")
    tail, health = Tail(str(path)), HealthLog()
    previous = 0
    for cut in [*sorted(set(cuts)), len(ODD)]:
        tail.pack()
        with open(path, "ab") as fh:
            fh.write(ODD[previous:cut])
        previous = cut
        tail.poll(health, ODD_MAX_LINE_BYTES)
    with monkeypatch.context() as patch:
        if not tail.packed:  # rebuilt and continued: compared with its segment
            patch.setattr(tail_module, "REREAD_MAX_BYTES", 0)
        whole, counters = Tail(str(path)), HealthLog()
        whole.poll(counters, ODD_MAX_LINE_BYTES)
    assert tail.open_line == whole.open_line and tail.offset == whole.offset == len(ODD)
    assert tail.dump() == whole.dump()
    assert health.counters == counters.counters and counters.counters["oversizedLine"] >= 1


@pytest.mark.parametrize("layout", ["file", "sqlite"])
def test_a_warm_start_from_segmentless_images_then_new_data_equals_a_fresh_read(
    layout: str, small_state: Path, sqlite_state: Path, tmp_path: Path
) -> None:
    """The persisted index keeps an idle small transcript's image as it is (without its segment):
    a warm start adopts it, and the first new data after it rebuilds it from the file (or the
    session's events) before folding them. Rows and totals equal a fresh read's."""
    state, cache = (small_state if layout == "file" else sqlite_state), str(tmp_path / "cache")
    cold = make_store(state, no_cache=False, cache_dir=cache)
    cold.scan()
    cold.close()
    warm = make_store(state, no_cache=False, cache_dir=cache)
    warm.scan()
    if layout == "file":
        changed: set[str] | None = {str(state / OPS_TRANSCRIPT)}
        tail = warm.agents["ops"].tails[str(state / OPS_TRANSCRIPT)]
        with open(state / OPS_TRANSCRIPT, "ab") as fh:
            fh.write(jsonl([live_call("a1b2c3d4", 0.25)]))
    else:
        changed = None
        with writer(sqlite_path(state, "ops")) as db:
            sid = current_session_id(db, "agent:ops:quick")
            tail = warm.agents["ops"].tails[f"ops/{sid}"]
            append_events(db, sid, [live_call("a1b2c3d4", 0.25)])
        db.close()
    assert segless(tail)  # as the index kept it
    rereads = Tail.rereads
    after = warm.scan(changed)
    warm.close()
    assert Tail.rereads == rereads + 1
    again = make_store(state).scan()
    assert dict(after.by_key) == dict(again.by_key)
    assert after.totals == again.totals
