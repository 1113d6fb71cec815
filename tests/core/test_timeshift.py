"""Moving a store's timestamps: only timestamps change, by exactly the offset."""

from __future__ import annotations

import json
import re
from pathlib import Path

from clawstats.core.timeshift import latest_ms, shift_bytes, shift_name
from tests.conftest import SMALL_STATE, scan, shift_to_now

DAY_MS = 86_400_000


def test_only_timestamps_move() -> None:
    line = (
        b'{"type":"message","id":"17955400112345","timestamp":"2026-11-24T17:08:46.788Z",'
        b'"message":{"role":"user","content":"ref 1795540011701 at 2026-11-24T17:08:46Z",'
        b'"usage":{"input":1795540},"timestamp":1795540125542,"ids":[1795540125542, 1795540125543]}}\n'
    )
    moved = shift_bytes(line, DAY_MS)
    body = json.loads(moved)
    assert body["timestamp"] == "2026-11-25T17:08:46.788Z"
    assert body["message"]["timestamp"] == 1795540125542 + DAY_MS
    assert body["message"]["ids"] == [1795540125542 + DAY_MS, 1795540125543 + DAY_MS]
    assert body["id"] == "17955400112345" and body["message"]["usage"]["input"] == 1795540
    assert body["message"]["content"] == "ref 1795540011701 at 2026-11-24T17:08:46Z"  # not a JSON value
    assert len(moved) == len(line) and shift_bytes(moved, -DAY_MS) == line
    assert latest_ms(line) == 1795540126788  # the ISO time, the latest of the four


def test_precision_and_archive_names() -> None:
    assert shift_bytes(b'{"t":"2026-12-31T23:59:59Z"}', 1000) == b'{"t":"2027-01-01T00:00:00Z"}'
    assert shift_bytes(b'{"t":"2026-12-31T23:59:59.5Z"}', 600) == b'{"t":"2027-01-01T00:00:00.1Z"}'
    name = "02e6078a.jsonl.reset.2026-11-24T17-08-45.156Z"
    assert shift_name(name, DAY_MS) == "02e6078a.jsonl.reset.2026-11-25T17-08-45.156Z"
    assert shift_name("x.jsonl.deleted.2026-11-24T23-59-59.999Z.gz", 1) == "x.jsonl.deleted.2026-11-25T00-00-00.000Z.gz"
    assert shift_name("abc.jsonl", DAY_MS) == "abc.jsonl"


def test_shifted_store_reads_the_same_but_recent(tmp_path: Path) -> None:
    import shutil

    state = tmp_path / "state"
    shutil.copytree(SMALL_STATE, state)
    before = {r.key: r for r in scan(state).rows}
    offset_ms = shift_to_now(state)
    after = {r.key.replace(str(offset_ms), ""): r for r in scan(state).rows}
    assert set(after) == set(before)
    for key, row in before.items():
        moved = after[key]
        assert (moved.context_tokens, moved.total_cost, moved.model) == (row.context_tokens, row.total_cost, row.model)
        assert moved.updated_at_ms == row.updated_at_ms + offset_ms
    assert any(re.search(r"\.reset\.", p.name) for p in state.rglob("*"))
