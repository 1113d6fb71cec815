"""Tailing real transcripts on real files: appends, partial lines, truncation, bad input."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clawstats.core.health import HealthLog
from clawstats.watch import tail as tail_module
from clawstats.watch.identity import HEAD_BYTES, head_digest
from clawstats.watch.tail import Tail
from tests.conftest import OPS_TRANSCRIPT, SMALL_STATE

REAL = (SMALL_STATE / OPS_TRANSCRIPT).read_bytes()
# Multi-byte UTF-8 in a real line, so splits can fall inside a character.
UNICODE_LINE = (
    json.dumps(
        {
            "type": "message",
            "id": "u1",
            "parentId": None,
            "timestamp": "2026-11-24T17:09:00.000Z",
            "message": {"role": "user", "content": "naïve café — 日本語 ✓", "timestamp": 1},
        },
        ensure_ascii=False,
    )
    + "\n"
).encode()


def one_shot(data: bytes, tmp: Path) -> bytes:
    tmp.mkdir(exist_ok=True)
    path = tmp / "one.jsonl"
    path.write_bytes(data)
    tail = Tail(str(path))
    tail.poll(HealthLog())
    return tail.stats.dump()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(REAL) + len(UNICODE_LINE)), max_size=12))
def test_random_appended_chunks_equal_one_shot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cuts: list[int]
) -> None:
    # segments kept, so the dumps compare them too (packed without: tests/watch/test_reread.py)
    monkeypatch.setattr(tail_module, "REREAD_MAX_BYTES", 0)
    data = UNICODE_LINE + REAL
    expected = one_shot(data, tmp_path)
    path = tmp_path / "inc.jsonl"
    path.write_bytes(b"")
    tail, health = Tail(str(path)), HealthLog()
    previous = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        with open(path, "ab") as fh:
            fh.write(data[previous:cut])
        previous = cut
        tail.poll(health)
    assert tail.stats.dump() == expected
    assert health.counters == {}
    path.unlink()


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = REAL.splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[5][:40])
    tail, health = Tail(str(path)), HealthLog()
    tail.poll(health)
    assert tail.stats.assistant == 0 and health.counters == {}
    with open(path, "ab") as fh:
        fh.write(lines[5][40:])
    assert tail.poll(health)
    assert tail.stats.assistant == 1
    assert tail.stats.cost == json.loads(lines[5])["message"]["usage"]["cost"]["total"]


def test_truncated_and_replaced_files_are_reread_alone(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = REAL.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:12]))
    tail, health = Tail(str(path)), HealthLog()
    tail.poll(health)
    assert tail.stats.assistant == 3
    path.write_bytes(b"".join(lines[:6]))  # truncated (same inode, shorter)
    tail.poll(health)
    assert tail.stats.assistant == 1
    replacement = tmp_path / "new.jsonl"
    replacement.write_bytes(b"".join(lines[:9]))
    os.replace(replacement, path)  # replaced under the same name (new inode)
    tail.poll(health)
    assert tail.stats.assistant == 2
    # Same size, same inode, different head: rewritten in place.
    data = path.read_bytes()
    path.write_bytes(data.replace(b"d5c19bcf", b"e5c19bcf", 1))
    tail.poll(health)
    assert tail.stats.assistant == 2 and tail.stats.session_id == "e5c19bcf-981c-460f-9bff-7519bb38fe72"


def test_bad_lines_are_counted_once_and_skipped(tmp_path: Path) -> None:
    lines = REAL.splitlines(keepends=True)
    bad = [
        b"{not json\n",
        b'{"type":"message","message":{"role":"assistant","usage":{"input":"many"}}}\n',
        b'{"type":"message","message":{"role":"assistant","usage":{"input":NaN}}}\n',
        b"\xff\xfe garbage \xc3\x28\n",
        b"[1, 2, 3]\n",
        b"\n",
        b"   \n",
    ]
    path = tmp_path / "t.jsonl"
    path.write_bytes(lines[0] + b"".join(bad) + lines[5])
    tail, health = Tail(str(path)), HealthLog()
    tail.poll(health)
    tail.poll(health)
    assert sum(health.counters.values()) == 5
    assert health.counters.get("malformed", 0) + health.counters.get("wrongType", 0) == 5
    assert tail.stats.assistant == 1


def test_huge_line_is_parsed_and_oversized_line_skipped(tmp_path: Path) -> None:
    lines = REAL.splitlines(keepends=True)
    big = json.loads(lines[5])
    big["message"]["content"][0]["text"] = "x" * (50 << 20)  # a 50 MB assistant line
    path = tmp_path / "t.jsonl"
    path.write_bytes(lines[0] + json.dumps(big).encode() + b"\n" + lines[8])
    tail, health = Tail(str(path)), HealthLog()
    tail.poll(health)
    assert tail.stats.assistant == 2 and health.counters == {}
    small_limit = Tail(str(path))
    small_limit.poll(health, max_line_bytes=1 << 20)
    assert health.counters == {"oversizedLine": 1}
    assert small_limit.stats.assistant == 1
    assert small_limit.offset == path.stat().st_size


def test_empty_file_and_compressed_archives(tmp_path: Path) -> None:
    empty = tmp_path / "e.jsonl"
    empty.write_bytes(b"")
    tail, health = Tail(str(empty)), HealthLog()
    assert tail.poll(health) is False
    plain = Tail(str(SMALL_STATE / OPS_TRANSCRIPT))
    plain.poll(health)
    gz = tmp_path / "x.jsonl.reset.2026-11-24T17-08-45.156Z.gz"
    gz.write_bytes(gzip.compress(REAL))
    zst = tmp_path / "x.jsonl.deleted.2026-11-24T17-08-45.156Z.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(REAL))
    for archive in (gz, zst):
        reader = Tail(str(archive))
        assert reader.poll(health)
        assert reader.stats.dump() == plain.stats.dump()
        assert reader.poll(health) is False  # immutable: read once
    broken = tmp_path / "y.jsonl.reset.2026-11-24T17-08-45.156Z.gz"
    broken.write_bytes(gzip.compress(REAL)[:500])
    Tail(str(broken)).poll(health)
    assert health.counters.get("corruptArchive") == 1


@pytest.mark.parametrize("lines", [3, None])
def test_a_whole_read_is_one_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: int | None) -> None:
    """A cold read of a file is one read: its bytes, asked for with one to spare so the short
    answer is the end (no read more to see nothing); its head (identity) is taken from them."""
    data = b"".join(REAL.splitlines(keepends=True)[:lines])
    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    reads: list[tuple[int, int]] = []
    real_pread = os.pread

    def pread(fd: int, size: int, offset: int) -> bytes:
        reads.append((size, offset))
        return real_pread(fd, size, offset)

    monkeypatch.setattr(os, "pread", pread)
    tail, read_before = Tail(str(path)), Tail.counts.bytes_read
    assert tail.poll(HealthLog())
    assert reads == [(len(data) + 1, 0)]
    assert tail.offset == Tail.counts.bytes_read - read_before == len(data) and tail.head == head_digest(
        data[:HEAD_BYTES]
    )
    assert tail.stats.dump() == one_shot(data, tmp_path / "again")


def test_bytes_written_between_the_stat_and_the_read_are_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = REAL.splitlines(keepends=True)
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(lines[:-1]))
    real_stat = os.stat
    late = [lines[-1]]

    def stat_then_write(name: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        st = real_stat(name, *args, **kwargs)
        if name == str(path) and late:
            with open(path, "ab") as fh:  # the writer appends right after our stat
                fh.write(late.pop())
        return st

    monkeypatch.setattr(os, "stat", stat_then_write)
    tail, health = Tail(str(path)), HealthLog()
    assert tail.poll(health)
    assert tail.offset == len(REAL)  # read past the size the stat saw, to the end
    monkeypatch.setattr(os, "stat", real_stat)
    assert not tail.poll(health)  # the new size: looked at again, nothing new
    assert tail.stats.dump() == one_shot(REAL, tmp_path / "again") and health.counters == {}
