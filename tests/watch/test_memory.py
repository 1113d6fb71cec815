"""What an idle session costs in memory, pinned as counts and sizes (never times).

A server keeps one accumulator, tail, index row, view and row per session: at 50,000 sessions
every byte per session is 50 KB. Measured figures are in bench/RESULTS.md ("Memory per idle
session"); the bounds here are those with ample margin.
"""

from __future__ import annotations

import gc
import json
import shutil
import sqlite3
import sys
import tracemalloc
from array import array
from pathlib import Path

import pytest

from clawstats.core import peek as peek_module
from clawstats.core import records
from clawstats.core.catalog import Catalog
from clawstats.core.enricher import Enricher
from clawstats.core.health import HealthLog
from clawstats.core.peek import Peek, buckets_of, peek, shape_of
from clawstats.core.records import decode_line, shared
from clawstats.core.session import build_row
from clawstats.core.snapshot import TranscriptView
from clawstats.core.transcript import TranscriptStats, iso_to_ms
from clawstats.settings import Settings
from clawstats.watch import cold, sqlite_events
from clawstats.watch import store as store_module
from clawstats.watch.engine import open_store
from clawstats.watch.publisher import BuiltRows
from clawstats.watch.source import cursor_id
from clawstats.watch.sqlite_store import SqliteAgent
from clawstats.watch.tail import IDLE_POLLS, FileId, Tail, head_digest
from tests.conftest import OPS_TRANSCRIPT, REAL_SQLITE, SMALL_STATE, make_store
from tests.core.lines import (
    append_events,
    assistant,
    current_session_id,
    live_call,
    model_change,
    octet_length,
    sqlite_path,
    stats_of,
    usage,
    user,
    with_ids,
    writer,
)
from tests.openclaw.attrib_data import ATTRIB_STATE

FEW, MANY = 100, 400
#: Python heap kept per further idle session after a cold scan, each a copy of the real ops
#: transcript (44 entries, 22 calls, its 74 KB of text never kept): 9.2 KB before the memory work
#: (session 3), 6.8 KB after, 4.9 KB at the start of session 5, 4.0 KB after its views kept the
#: dump (not decoded buckets) and the joins one map per transcript; the bound leaves 20 % for
#: other platforms and Python versions.
HEAP_PER_SESSION_BOUND = 4_800


def _three_turns() -> list[dict[str, object]]:
    turns: list[dict[str, object]] = []
    for n in range(3):
        turns += [user(ts=f"2026-11-24T10:0{n}:00.000Z"), assistant(use=usage(100 + n, 10, cost=0.01))]
    return with_ids(turns)


def test_an_idle_transcript_keeps_three_arrays_and_no_empty_lists() -> None:
    stats = stats_of(_three_turns())
    slots = [name for klass in type(stats).__mro__ for name in getattr(klass, "__slots__", ())]
    arrays = [name for name in slots if isinstance(getattr(stats, name), array)]
    assert len(arrays) == 3  # the segment, and the timeline as two arrays of pairs
    assert len(stats.seg) == 3 * 6 and stats.calls == 3
    # never compacted, never spawned: empty tuples (one shared object), not two lists each
    assert type(stats.compactions) is tuple and type(stats.spawned) is tuple
    assert sys.getsizeof(stats.compactions) + sys.getsizeof(stats.spawned) == 2 * sys.getsizeof(())


def test_a_view_shares_the_buckets_until_the_next_call_copies_them() -> None:
    stats = stats_of(_three_turns())
    view = TranscriptView.of("main", stats)
    assert view.buckets is stats.buckets  # an idle transcript's view costs no copy
    (bucket,) = view.buckets.values()
    assert bucket.calls == 3
    four = with_ids([*_three_turns(), assistant(use=usage(5, 1, cost=0.02))])
    stats.apply(decode_line(json.dumps(four[-1]).encode()))
    assert stats.buckets is not view.buckets
    assert bucket.calls == 3 and next(iter(stats.buckets.values())).calls == 4  # the view stayed as it was
    assert stats.buckets == stats_of(four).buckets
    assert TranscriptView.of("main", stats).points == 4


def test_a_tail_keeps_a_10_byte_digest_of_the_head_and_a_short_file_may_grow(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    first = json.dumps(_three_turns()[0]).encode() + b"\n"
    assert len(first) < 256
    path.write_bytes(first)
    tail, health = Tail(str(path)), HealthLog()
    read_before = Tail.counts.bytes_read
    tail.poll(health)
    assert len(tail.head) == 10  # 2 bytes of length, 8 of BLAKE2b; not the 256 bytes themselves
    with path.open("ab") as fh:  # grows past 256 bytes: the same file, not a replaced one
        for line in _three_turns()[1:]:
            fh.write(json.dumps(line).encode() + b"\n")
    tail.poll(health)
    assert Tail.counts.bytes_read - read_before == path.stat().st_size and tail.stats.entries == 6
    assert tail.stats.last_id is None  # a finished read keeps no line's id string
    assert tail.stats.last_ts == tail.stats.last_ms == iso_to_ms("2026-11-24T10:02:00.000Z")  # a number, not text
    path.write_bytes(path.read_bytes().replace(b"e0000", b"f0000", 1))  # rewritten in place, same size
    tail.poll(health)
    assert Tail.counts.bytes_read - read_before == 2 * path.stat().st_size  # read again from zero


def _store_of(state: Path, copies: int) -> None:
    """The real small state dir plus ``copies`` copies of the real ops transcript, each with its row."""
    shutil.copytree(SMALL_STATE, state)
    sessions = state / "agents/ops/sessions"
    index_path = sessions / "sessions.json"
    index = json.loads(index_path.read_text())
    name = Path(OPS_TRANSCRIPT).name
    template = next(row for row in index.values() if str(row.get("sessionFile", "")).endswith(name))
    for n in range(copies):
        sid = f"00000000-0000-4000-8000-{n:012d}"
        path = sessions / f"{sid}.jsonl"
        shutil.copyfile(state / OPS_TRANSCRIPT, path)
        index[f"agent:ops:copy-{n}"] = {**template, "sessionId": sid, "sessionFile": str(path), "updatedAt": n}
    index_path.write_text(json.dumps(index))


def _kept(state: Path) -> tuple[int, int, object]:
    """(bytes of Python heap the store keeps after its cold scan, rows, the store kept alive)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = make_store(state)
        rows = len(store.scan().rows)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, rows, store
    finally:
        tracemalloc.stop()


def test_the_heap_kept_per_idle_session_is_bounded(tmp_path: Path) -> None:
    """The heap a store keeps for each further idle session: the difference between a store of
    ``FEW`` and one of ``MANY`` copies (one-off costs, e.g. the catalog, cancel out)."""
    _store_of(tmp_path / "few", FEW)
    _store_of(tmp_path / "many", MANY)
    _kept(tmp_path / "few")  # first-use caches (decoders, shared strings) out of the way
    few, few_rows, _few_store = _kept(tmp_path / "few")
    many, many_rows, _many_store = _kept(tmp_path / "many")
    assert many_rows - few_rows == MANY - FEW
    per_session = (many - few) / (many_rows - few_rows)
    assert per_session < HEAP_PER_SESSION_BOUND, per_session


def test_one_row_is_kept_per_key_and_the_built_rows_are_recovered_exactly(tmp_path: Path) -> None:
    """The publisher keeps the served (enriched) rows only; what the enricher reads as built is
    rebuilt from them, equal to what ``build_row`` gives (lineage, cron runs, archives)."""
    state = tmp_path / "state"
    shutil.copytree(ATTRIB_STATE, state)
    store = make_store(state)
    store.scan()
    publisher = store._publisher
    assert publisher._built == {}  # nothing but the served rows kept between scans
    built = BuiltRows(publisher.table.rows, {}, publisher._links)
    rebuilt = 0
    for key, served in publisher.table.rows.items():
        src = store._joins.source_of(key)
        assert src is not None
        assert built[key] == publisher._build(src)
        rebuilt += built[key] != served
    assert rebuilt >= 5  # enrichment changed rows (lineage, cron jobs): there was something to recover


def test_shared_strings_are_one_object_and_their_table_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = "".join(["mock/", "memory-test"]), "".join(["mock/", "memory-test"])
    assert first is not second and shared(first) is shared(second)
    monkeypatch.setattr(records, "SHARED_MAX", len(records._SHARED))  # full: odd input adds nothing
    odd = "".join(["never-", "seen"])
    assert shared(odd) is odd and "never-seen" not in records._SHARED


def test_index_rows_share_their_context_window_int() -> None:
    doc = {f"agent:main:s{n}": {"sessionId": f"s{n}", "contextTokens": 128000 + n % 2} for n in range(6)}
    doc["agent:main:f"] = {"sessionId": "f", "contextTokens": 128000.0}
    rows, _ = records.parse_index(json.dumps(doc).encode())
    assert len({id(rows[f"agent:main:s{n}"].contextTokens) for n in range(6)}) == 2  # one object per value
    assert type(rows["agent:main:f"].contextTokens) is float  # a float stays itself (128000.0 == 128000)


def test_a_served_row_shares_its_index_rows_update_time_object() -> None:
    """The index row holds ``updatedAt`` as the float the served row keeps (``updatedAtMs``): one
    object, not an int and a float; equal to the int, so a rewrite leaves the row as it was."""
    raw = json.dumps({"agent:main:a": {"sessionId": "a", "updatedAt": 1795540062683}}).encode()
    rows, _ = records.parse_index(raw)
    row = rows["agent:main:a"]
    assert type(row.updatedAt) is float and row.updatedAt == 1795540062683
    served = build_row("agent:main:a", "main", row, None, Catalog())
    assert served.updated_at_ms is row.updatedAt and served.updated_at == "2026-11-24T17:07:42.683Z"
    again, _ = records.parse_index(raw, rows)
    assert again["agent:main:a"] is row
    huge = json.dumps({"agent:main:b": {"sessionId": "b", "updatedAt": 2**53 + 1}}).encode()
    assert records.parse_index(huge)[0]["agent:main:b"].updatedAt == 2**53 + 1  # not a float: inexact


def test_the_first_scan_hands_free_heap_back_once(small_state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = store_module.release_free_heap
    calls: list[None] = []
    monkeypatch.setattr(store_module, "release_free_heap", lambda: calls.append(None))
    store = make_store(small_state)
    store.scan()
    store.scan()
    assert len(calls) == 1  # after the first scan only: later scans free little
    real()  # and the real one runs (a no-op where the C library has no malloc_trim)


def test_sqlite_sessions_are_settled_after_a_read_as_file_tails_are(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    store = make_store(state)
    store.scan()
    read = [tail.stats for sid, tail in store.tails.items() if not sid.startswith("/") and tail.stats.entries]
    assert read and all(s.last_id is None and type(s.last_ts) is float for s in read)


# -- packed idle transcripts -------------------------------------------------------------------


def _append(path: Path, cost: float) -> None:
    line = assistant(ts="2026-11-24T17:09:00.000Z", use=usage(10, 1, cost=cost))
    with path.open("ab") as fh:
        fh.write(json.dumps({**line, "id": "feedf00d", "parentId": None}).encode() + b"\n")


def _packed(store: object) -> dict[str, bool]:
    return {sid: tail.packed for sid, tail in store.tails.items()}  # type: ignore[attr-defined]


def test_idle_transcripts_are_packed_after_a_cold_scan_and_an_append_unpacks_only_its_own(tmp_path: Path) -> None:
    """After the first scan every transcript holds its dump, not its TranscriptStats. An append
    unpacks the one it changed, once: the next appends find it unpacked (no dump and load each);
    the others stay packed, and the totals and rows are those a cold scan gives."""
    state = tmp_path / "state"
    _store_of(state, 40)
    store = make_store(state)
    first = store.scan()
    assert all(_packed(store).values()), [sid for sid, packed in _packed(store).items() if not packed]
    path = state / "agents/ops/sessions/00000000-0000-4000-8000-000000000007.jsonl"
    before = Tail.unpacks
    _append(path, 0.5)
    after = store.scan({str(path)})
    assert Tail.unpacks == before + 1  # the appended transcript's, and nobody else's
    assert after.changed == {"agent:ops:copy-7"}
    assert [sid for sid, packed in _packed(store).items() if not packed] == [str(path)]
    assert abs(after.totals.total_cost - first.totals.total_cost - 0.5) < 1e-9
    _append(path, 0.25)
    store.scan({str(path)})
    assert Tail.unpacks == before + 1  # still unpacked: an append pays no dump and load
    cold = make_store(state).scan()
    assert after.totals != cold.totals and store.scan().totals == cold.totals
    assert {k: r.total_cost for k, r in store.snapshot.by_key.items()} == {  # type: ignore[union-attr]
        k: r.total_cost for k, r in cold.by_key.items()
    }


def test_an_idle_transcripts_view_keeps_its_dump_and_decodes_buckets_only_when_read(tmp_path: Path) -> None:
    """A packed transcript's view holds the tail's own dump (no copy), no decoded buckets: the
    totals decode each once at the first scan, and an append decodes only the changed
    transcript's old buckets (to take them out of the sums); a usage query decodes each once."""
    state = tmp_path / "state"
    _store_of(state, 20)
    store = make_store(state)
    started = peek_module.decoded_buckets
    first = store.scan()
    views = store._joins.tviews
    assert views and all(view.held is store.tails[sid]._state for sid, view in views.items())
    assert peek_module.decoded_buckets - started == len(first.transcripts)  # the first totals' sums
    path = state / "agents/ops/sessions/00000000-0000-4000-8000-000000000007.jsonl"
    _append(path, 0.5)
    before = peek_module.decoded_buckets
    after = store.scan({str(path)})
    assert peek_module.decoded_buckets == before + 1  # the changed transcript's old buckets, once
    assert not isinstance(views[str(path)].held, bytes)  # being written to: live buckets, shared
    assert sum(isinstance(view.held, bytes) for view in views.values()) == len(views) - 1
    assert abs(after.totals.total_cost - first.totals.total_cost - 0.5) < 1e-9
    before = peek_module.decoded_buckets
    assert after.usage("agent") == after.totals.by_agent
    assert peek_module.decoded_buckets == before + len(after.transcripts) - 1


def test_the_joins_keep_one_map_entry_per_transcript_and_a_row_change_sums_nothing_again(tmp_path: Path) -> None:
    """Per transcript the joins keep its view (whose source is its tail: no map of tails), the one
    key reading it as a string (no tuple) and the rollup's membership (no map of the counted); a
    row whose index fields change counts its idle transcript as it was: no sum, no decode."""
    state = tmp_path / "state"
    _store_of(state, 10)
    store = make_store(state)
    store.scan()
    joins = store._joins
    assert set(vars(joins)) == {"sources", "refs", "archives", "owners", "tails", "tviews", "rollup"}
    assert not joins.refs  # every read transcript's readers are its tail's
    assert all(type(tail.readers) is str for tail in store.tails.values())
    path = str(state / "agents/ops/sessions/00000000-0000-4000-8000-000000000003.jsonl")
    assert joins.tails[path] == ("ops", store.tails[path]) and len(joins.tails) == len(joins.tviews)
    index_path = state / "agents/ops/sessions/sessions.json"
    index = json.loads(index_path.read_text())
    index["agent:ops:copy-3"]["updatedAt"] += 1000
    index_path.write_text(json.dumps(index))
    summed, decoded = joins.rollup.transcripts_summed, peek_module.decoded_buckets
    after = store.scan(set())
    assert after.changed == {"agent:ops:copy-3"}
    assert joins.rollup.transcripts_summed == summed and peek_module.decoded_buckets == decoded


def test_the_row_table_keeps_no_sort_key_and_no_view_per_row(tmp_path: Path) -> None:
    """The order is the chunks of rows (bisected by the rows' own sort keys) and each chunk's last
    key: no second list of (updated, key) tuples, one per row."""
    state = tmp_path / "state"
    _store_of(state, 30)
    store = make_store(state)
    store.scan()
    table = store._publisher.table
    assert set(vars(table)) == {"rows", "unknown", "_ordered", "_lasts", "added"}  # views: read through the joins
    assert sum(map(len, table._ordered)) == len(table.rows) and len(table._lasts) == len(table._ordered)
    views = store._publisher.views  # each row's view, read through the joins
    assert dict(views) == dict(store.snapshot.views) and len(views) == len(table.rows)
    path = state / "agents/ops/sessions/00000000-0000-4000-8000-000000000003.jsonl"
    _append(path, 0.5)
    after = store.scan({str(path)})
    assert views["agent:ops:copy-3"] is after.views["agent:ops:copy-3"] is store._joins.tviews[str(path)]
    assert dict(views) == dict(after.views)


def test_the_snapshots_rows_by_key_are_the_tables_not_a_second_map(tmp_path: Path) -> None:
    """The table's rows are the last published mapping (shared with the snapshots) and the changes
    since: no dict of every row beside the snapshot's (~2 MB at 50,000 rows). An older snapshot
    keeps its rows when the table changes."""
    state = tmp_path / "state"
    _store_of(state, 30)
    store = make_store(state)
    first = store.scan()
    rows = store._publisher.table.rows
    assert rows.published is first.by_key and first.by_key._parent is None  # the cold start's dict, not copied
    assert dict(rows) == dict(first.by_key) and len(rows) == len(first.by_key) > 30
    old = first.by_key["agent:ops:copy-3"]
    path = state / "agents/ops/sessions/00000000-0000-4000-8000-000000000003.jsonl"
    _append(path, 0.5)
    after = store.scan({str(path)})
    assert rows.published is after.by_key and after.by_key._parent is first.by_key  # one layer on top
    assert after.by_key._layer.keys() == {"agent:ops:copy-3"}
    assert after.by_key["agent:ops:copy-3"] is rows["agent:ops:copy-3"] != old
    assert first.by_key["agent:ops:copy-3"] is old  # the older snapshot unchanged
    path.unlink()
    gone = store.scan({str(path)})
    assert "agent:ops:copy-3" in gone.by_key  # its row stays (cost unknown); a key leaving:
    (state / "agents/ops/sessions/sessions.json").write_text("{}")
    empty = store.scan()
    assert len(empty.by_key) == len(rows) and "agent:ops:copy-3" not in rows
    assert "agent:ops:copy-3" in first.by_key and "agent:ops:copy-3" in after.by_key


def test_a_reset_archive_is_owned_by_the_key_whose_id_moved_on_with_no_map_of_ids_kept(tmp_path: Path) -> None:
    """The ids of the last plan are read from its sources' rows (no key -> sessionId map per
    agent): an alias row reading the same session first, the key whose id then changed still
    owns the archive."""
    sessions = tmp_path / "state/agents/main/sessions"
    sessions.mkdir(parents=True)
    old_sid, new_sid = "00000000-0000-4000-8000-0000000000aa", "00000000-0000-4000-8000-0000000000bb"
    lines = b"".join(json.dumps(line).encode() + b"\n" for line in _three_turns())
    (sessions / f"{old_sid}.jsonl").write_bytes(lines)
    index = {"agent:main:alias": {"sessionId": old_sid}, "agent:main:live": {"sessionId": old_sid}}
    (sessions / "sessions.json").write_text(json.dumps(index))
    store = make_store(tmp_path / "state")
    store.scan()
    agent = store.agents["main"]
    assert agent.owners[old_sid] == "agent:main:alias" and not hasattr(agent, "_last_ids")
    (sessions / f"{old_sid}.jsonl").rename(sessions / f"{old_sid}.jsonl.reset.2026-11-24T18-00-00.000Z")
    (sessions / f"{new_sid}.jsonl").write_bytes(lines)
    (sessions / "sessions.json").write_text(json.dumps({"agent:main:live": {"sessionId": new_sid}}))
    after = store.scan()
    assert after.by_key[f"agent:main:{old_sid}"].archived_from == "agent:main:live"
    assert agent._learnt == {old_sid: "agent:main:live"}  # learnt: the id moved on; no row's own id


def test_an_agent_keeps_no_map_of_its_rows_ids(tmp_path: Path) -> None:
    """Which key a session id belongs to is read from the rows when a plan needs it (an orphan or
    archive): the agent keeps only what it learnt otherwise (none here), yet tells the index
    every row's id when it persists them."""
    state = tmp_path / "state"
    _store_of(state, 10)
    store = make_store(state)
    store.scan()
    agent = store.agents["ops"]
    assert agent._learnt == {} and agent._by_id is None
    owners = agent.owners
    for n in range(10):
        assert owners[f"00000000-0000-4000-8000-{n:012d}"] == f"agent:ops:copy-{n}"


def test_a_transcript_packs_after_idle_polls_and_its_view_keeps_its_timeline(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(json.dumps(line).encode() + b"\n" for line in _three_turns()))
    tail, health = Tail(str(path)), HealthLog()
    tail.poll(health)
    tail.stats  # noqa: B018 (as a scan's reader: unpacked, then released)
    tail.release()
    assert tail.packed  # a whole read: idle, packed once its readers are done
    _append(path, 0.5)
    tail.poll(health)
    assert not tail.packed  # new bytes: unpacked, and kept so while written to
    view = TranscriptView.of("main", tail.stats, tail, tail.generation)
    tail.release()
    assert not tail.packed
    expected = tuple(list(part) for part in view.timeline())
    assert len(expected[0]) == 4
    for _ in range(IDLE_POLLS - 1):
        tail.poll(health)
        assert not tail.packed
    tail.poll(health)  # IDLE_POLLS polls found nothing new: packed
    assert tail.packed and tail.peek().cost == view.source.timeline_at(view.generation, 4)[2][-1]
    assert tuple(list(part) for part in view.timeline()) == expected  # read from the dump
    assert tail.image() is tail._state  # what the index flush writes: as kept, no load and dump
    _append(path, 0.25)
    tail.poll(health)
    assert tuple(list(part) for part in view.timeline()) == expected  # the view's first 4 calls
    path.write_bytes(b"".join(json.dumps(line).encode() + b"\n" for line in _three_turns()[:2]))
    tail.poll(health)  # shrunk: read again from zero, new statistics
    assert tail.stats.calls == 1 and view.timeline()[0] == array("d")  # not the new file's calls


def test_readers_of_idle_transcripts_peek_and_a_whole_tree_pass_unpacks_none(tmp_path: Path) -> None:
    """Base prompts, archive costs, the orphan check and lineage/forecast enrichment read packed
    transcripts without unpacking them: a change of one row's lineage (a whole-tree pass over
    every row) unpacks that row's transcript only, for the time its row is built."""
    state = tmp_path / "state"
    shutil.copytree(ATTRIB_STATE, state)
    store = make_store(state)
    first = store.scan()
    assert all(_packed(store).values())
    index_path = state / "agents/main/sessions/sessions.json"
    index = json.loads(index_path.read_text())
    leaf = next(k for k, r in first.by_key.items() if k in index and r.parent_key is None and not r.archived)
    index[leaf]["spawnedBy"] = next(k for k in index if k != leaf)
    index_path.write_text(json.dumps(index))
    passes, built, before = store._enricher.full_passes, store.rows_built, Tail.unpacks
    after = store.scan(set())
    assert store._enricher.full_passes == passes + 1 and store.rows_built == built + 1
    assert Tail.unpacks <= before + 1 and all(_packed(store).values())
    assert after.by_key[leaf].parent_key is not None


def test_a_warm_start_adopts_the_index_packed_and_flushes_without_unpacking(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _store_of(state, 10)
    cache = tmp_path / "cache"
    cold = make_store(state, no_cache=False, cache_dir=str(cache))
    cold.scan()
    cold.close()
    warm = make_store(state, no_cache=False, cache_dir=str(cache))
    restored = warm.scan()
    assert all(_packed(warm).values())
    path = state / "agents/ops/sessions/00000000-0000-4000-8000-000000000003.jsonl"
    (_agent, tail) = warm._joins.tails[str(path)]
    _append(path, 0.5)
    warm.scan({str(path)})
    assert not tail.packed
    before = Tail.unpacks
    warm.flush(force=True)  # the changed transcript's state as is; nothing packed is loaded to dump it
    assert Tail.unpacks == before
    warm.close()
    again = make_store(state, no_cache=False, cache_dir=str(cache)).scan()
    assert abs(again.totals.total_cost - restored.totals.total_cost - 0.5) < 1e-9


def test_a_tail_keeps_its_file_id_and_head_digest_as_one_bytes_object(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(json.dumps(line).encode() + b"\n" for line in _three_turns()))
    tail = Tail(str(path))
    assert tail.identity == b"" and tail.file_id is None and tail.head == b""
    tail.poll(HealthLog())
    assert tail.file_id == FileId.of(path.stat())
    assert tail.head == head_digest(path.read_bytes()[:256])
    assert tail.identity == FileId.of(path.stat()).packed() + tail.head  # no FileId, no ints kept
    assert sys.getsizeof(tail.identity) <= 80  # 83 with a 16-byte digest: an allocation of 96 bytes, not 80
    assert sys.getsizeof(tail) <= 128  # 12 slots (whether it reads an archive is told by its path)
    tail.file_id = None  # as a reprice does: the next poll reads it again, the digest stays
    assert tail.file_id is None and tail.head == head_digest(path.read_bytes()[:256])


def test_sqlite_cursors_share_their_database_identity(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    store = make_store(state)
    store.scan()
    by_db: dict[str, set[int]] = {}
    for sid, tail in store.tails.items():
        if not sid.startswith("/"):  # a cursor: <agentId>/<sessionId>
            by_db.setdefault(sid.split("/")[0], set()).add(id(tail.identity))
    assert len(by_db) == 2 and all(len(ids) == 1 for ids in by_db.values())  # one object per database


def _slots_of(stats: TranscriptStats) -> dict[str, object]:
    names = [name for klass in type(stats).__mro__ for name in getattr(klass, "__slots__", ())]
    return {name: getattr(stats, name) for name in names if name not in ("blob", "price", "shared_buckets", "last_id")}


def test_a_small_idle_transcripts_image_repeats_no_model_and_writes_no_day() -> None:
    turns: list[dict[str, object]] = [
        {"type": "session", "id": "0b44b4e6-0000-4000-8000-000000000064", "version": 3},
        model_change("openai", "gpt-5.2"),
    ]
    for n in range(3):
        turns += [
            user(ts=f"2026-11-24T10:0{n}:00.000Z"),
            assistant(use=usage(17000 + n, 10, cost=0.01), ts=f"2026-11-24T10:0{n}:01.000Z"),
        ]
    stats = stats_of(with_ids(turns))
    stats.settle()
    blob = stats.dump()
    # the model once (not again per bucket, nor as the provider and model id it switched to), the
    # day as a number
    assert blob.count(b"gpt-5.2") == 1 and b"2026-11-24" not in blob and b"openai" in blob
    assert b"0b44b4e6" not in blob  # the session's UUID as its 16 bytes
    assert len(blob) <= 280  # 343 bytes as version 10 wrote it, 273 now
    assert _slots_of(TranscriptStats.load(blob)) == _slots_of(stats)


def test_an_image_keeps_wide_segment_values_odd_days_and_other_models_exactly() -> None:
    long_text = "x" * 70_000  # characters past 16 bits
    turns: list[dict[str, object]] = [
        model_change("openrouter", "anthropic/claude-x"),  # a model id with a "/" of its own
        user(long_text, ts="2026-11-24T10:00:00.000Z"),
        assistant("openrouter", "anthropic/claude-x", usage(200_000, 10, cost=0.5), ts="2026-11-24T10:00:01.000Z"),
        user(ts="2026-11-25T10:00:00.000Z"),
        assistant("anthropic", "claude-y", usage(300, 10, cost=0.01), ts="2026-11-25T10:00:01.000Z"),
        assistant("anthropic", "claude-y", usage(300, 10, cost=0.01)),  # no timestamp: day "unknown"
        assistant("anthropic", "claude-y", usage(300, 10, cost=0.01), ts="20261125T10Z"),
    ]
    stats = stats_of(with_ids(turns))
    stats.settle()
    assert max(stats.seg[1::3]) > 0xFFFF and max(stats.seg[2::3]) > 0xFFFF
    loaded = TranscriptStats.load(stats.dump())
    assert _slots_of(loaded) == _slots_of(stats) and list(loaded.buckets) == list(stats.buckets)
    assert [type(v) for v in _slots_of(loaded).values()] == [type(v) for v in _slots_of(stats).values()]
    assert buckets_of(stats.dump()) == stats.buckets and "unknown" in {day for day, _ in stats.buckets}
    assert (loaded.current_provider, loaded.current_model_id) == ("openrouter", "anthropic/claude-x")
    empty = TranscriptStats()
    assert _slots_of(TranscriptStats.load(empty.dump())) == _slots_of(empty)
    for odd in ("0B44B4E6-0000-4000-8000-000000000064", "0b44b4e6 0000-4000-8000-000000000064", "main"):
        header = stats_of([{"type": "session", "id": odd, "version": 3}])
        assert TranscriptStats.load(header.dump()).session_id == odd  # not a UUID as OpenClaw writes it: as is


@pytest.mark.parametrize("calls", [0, 3, 40, 9000])  # timelines of no bytes, bin 8, bin 16, bin 32
def test_peek_and_shape_read_what_a_load_gives(calls: int) -> None:
    turns: list[dict[str, object]] = []
    for n in range(calls):
        turns += [user(ts="2026-11-24T10:00:00.000Z"), assistant(use=usage(100 + n, 10, cost=0.01))]
    stats = stats_of(with_ids(turns)) if turns else TranscriptStats()
    blob = stats.dump()
    figures, shape, loaded = peek(blob), shape_of(blob), TranscriptStats.load(blob)
    assert (figures.entries, figures.cost, figures.base_prompt, figures.last_call_ms) == (
        loaded.entries,
        loaded.cost,
        loaded.base_prompt,
        loaded.last_call_ms,
    )
    assert figures.calls == shape.calls == loaded.calls == calls
    assert figures.timeline(calls) == loaded.timeline() == Peek.of(loaded).timeline(calls)
    assert buckets_of(blob) == loaded.buckets and shape.compactions == loaded.compactions
    assert shape.spawned == loaded.spawned


def test_transcripts_read_by_workers_are_adopted_packed_and_loaded_once_for_their_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's image is the packed state: its view is read from it, its row from one
    temporary copy, so a cold read never holds every transcript's statistics at once."""
    state = tmp_path / "state"
    _store_of(state, 20)
    monkeypatch.setattr(cold, "PARALLEL_MIN_BYTES", 0)
    store = open_store(Settings(state_dir=str(state), no_cache=True), {}, workers=2)
    before = Tail.unpacks
    snap = store.scan()
    tails = sum(len(agent.tails) for agent in store.agents.values())
    assert tails > 20 and Tail.unpacks - before == tails  # one load each, for its row
    assert all(_packed(store).values())
    assert snap.totals == make_store(state).scan().totals


def test_a_transcript_idle_after_being_written_to_has_its_view_read_from_its_dump_again(tmp_path: Path) -> None:
    """A session written to while served keeps live buckets while written to; once idle its tail
    packs and its view (in the joins, the totals' members and the next snapshot) is read from the
    dump again: the same figures, nothing summed again, no revision for it."""
    state = tmp_path / "state"
    _store_of(state, 10)
    store = make_store(state)
    store.scan()
    path = str(state / "agents/ops/sessions/00000000-0000-4000-8000-000000000004.jsonl")
    key = "agent:ops:copy-4"
    _append(Path(path), 0.5)
    written = store.scan({path})
    joins = store._joins
    assert not isinstance(joins.tviews[path].held, bytes)  # being written to: live buckets
    summed = joins.rollup.transcripts_summed
    for _ in range(IDLE_POLLS):
        idle = store.scan({path})
    view = joins.tviews[path]
    assert isinstance(view.held, bytes) and view.held is store.tails[path]._state
    assert joins.rollup.member(path) == ("ops", view)  # the totals count the packed view
    assert idle.revision == written.revision and joins.rollup.transcripts_summed == summed
    other = state / "agents/ops/sessions/00000000-0000-4000-8000-000000000001.jsonl"
    _append(other, 0.25)  # the next change publishes the packed view with it
    later = store.scan({str(other)})
    assert later.views[key] is view and any(counted is view for _agent, counted in later.transcripts)
    fresh = make_store(state).scan()
    assert later.totals == fresh.totals and later.by_key[key] == fresh.by_key[key]


def test_a_sqlite_session_idle_after_new_events_is_packed_again(tmp_path: Path) -> None:
    """New events unpack a SQLite session's statistics; once none came for ``idle_pack_s`` they
    are packed again and its view is read from the dump (the totals as they were, no revision)."""
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    store = make_store(state)
    store.scan()
    with sqlite3.connect(state / "agents/ops/agent/openclaw-agent.sqlite") as db:
        db.create_function("octet_length", 1, octet_length)
        sid = current_session_id(db, "agent:ops:incident-long")
        append_events(db, sid, [live_call("p1", 0.5)])
    written = store.scan(set())
    agent = store.agents["ops"]
    assert isinstance(agent, SqliteAgent)
    stats_id = cursor_id("ops", sid)
    assert not store.tails[stats_id].packed and not isinstance(store._joins.tviews[stats_id].held, bytes)
    assert store.scan(set()).revision == written.revision and not store.tails[stats_id].packed  # not idle yet
    agent.idle_pack_s = 0.0
    idle = store.scan(set())
    view = store._joins.tviews[stats_id]
    assert store.tails[stats_id].packed and isinstance(view.held, bytes)
    assert store._joins.rollup.member(stats_id) == ("ops", view)
    assert idle.revision == written.revision and idle.totals == written.totals


def test_a_cold_start_names_every_row_changed_without_a_set_of_every_key(tmp_path: Path) -> None:
    """The first snapshot names every row as changed by its own rows' keys (no frozenset of 50,000
    keys kept until the next change); a later change names its keys in a set of their own."""
    state = tmp_path / "state"
    _store_of(state, 30)
    store = make_store(state)
    first = store.scan()
    assert not isinstance(first.changed, frozenset) and first.changed == set(first.by_key)
    assert sorted(first.changed) == sorted(row.key for row in first.rows)
    path = state / "agents/ops/sessions/00000000-0000-4000-8000-000000000003.jsonl"
    _append(path, 0.5)
    after = store.scan({str(path)})
    assert type(after.changed) is frozenset and after.changed == {"agent:ops:copy-3"}


def test_the_enricher_keeps_no_lineage_entry_a_plain_row_gives_and_the_rollup_no_tuple(tmp_path: Path) -> None:
    """A row with no parent and no children (most) has nothing kept by the enricher (its root is
    itself, its tree cost its own cost, its shape the plain one): no parent, root, tree cost, own
    cost or shape per row (the publisher names the rows new in each update);
    the rollup counts each transcript as its view (which names its agent), not an (agent, view)
    tuple. The rows served are those of a whole-tree pass (attribution data: parents, archives,
    cron runs)."""
    state = tmp_path / "state"
    _store_of(state, 30)
    shutil.copytree(ATTRIB_STATE / "agents", state / "agents", dirs_exist_ok=True)
    store = make_store(state)
    snap = store.scan()
    enricher = store._publisher.enricher
    tree = enricher.tree
    assert tree is not None
    plain = [key for key, row in snap.by_key.items() if row.parent_key is None and key not in tree.children]
    assert len(plain) >= 30
    maps = (tree.parents, tree.roots, tree.tree_cost, enricher._costs, enricher._shapes)
    assert [key for m in maps for key in plain if key in m] == []
    assert 0 < len(enricher._shapes) < len(snap.by_key) - 30  # the rows with a parent, archive or children
    rollup = store._joins.rollup
    members = [m for block in rollup._members for m in block.values()]
    assert members and not any(isinstance(m, tuple) for m in members)
    assert rollup._pairs == [None] * len(rollup._pairs)  # no (agent, view) pair until a reader asks
    publisher = store._publisher
    built = BuiltRows(publisher.table.rows, {}, publisher._links).everything()
    fresh = Enricher()  # a whole-tree pass over the same rows
    whole = fresh.update(built, publisher.views, set(built), set(), {}, publisher.catalog.compaction)
    assert fresh.full_passes == 1
    for key, row in snap.by_key.items():
        assert (row.parent_key, row.root_key, row.tree_cost) == (
            whole[key].parent_key,
            whole[key].root_key,
            whole[key].tree_cost,
        ), key


def test_a_transcripts_path_is_one_string_for_listing_plan_tail_and_joins(tmp_path: Path) -> None:
    """The listing keeps each transcript's path (mapped to itself: no set of names beside them),
    and that one object is the plan's, the tail's, the joins' key and, for a row naming its file
    here, the row's ``sessionFile``; a listing again after a new transcript keeps the objects."""
    state = tmp_path / "state"
    _store_of(state, 10)
    store = make_store(state)
    store.scan()
    agent = store.agents["ops"]
    paths = agent.listing.paths
    assert paths is not None and not hasattr(agent.listing, "names")
    for path, tail in agent.tails.items():
        assert paths[path] is path and tail.path is path
        assert next(k for k in store._joins.tviews if k == path) is path
    named = [s for s in agent.sources.values() if s.row is not None and s.row.sessionFile == s.stats_id]
    assert len(named) >= 10
    for src in named:
        assert src.row is not None and src.stats_id is not None
        assert src.row.sessionFile is src.stats_id is paths[src.stats_id]
    before = dict(paths)
    new = state / "agents/ops/sessions/00000000-0000-4000-8000-0000000000ff.jsonl"
    shutil.copyfile(state / OPS_TRANSCRIPT, new)
    agent.listing.relist = True
    store.scan()
    after = agent.listing.paths
    assert after is not None and str(new) in after
    assert all(after[path] is path for path in before)


def test_a_cold_publish_drops_each_built_row_once_enriched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a cold start every row is built, then enriched into the served copy: each built row is
    let go as soon as its copy is made (the copy takes its memory), not all at once after the
    publish (empty pools the process then keeps: ~16 MB at 50,000 rows)."""
    from clawstats.core import enricher as enricher_module

    state = tmp_path / "state"
    _store_of(state, 20)
    store = make_store(state)
    left: list[int] = []
    real = enricher_module.foresee

    def counting(*args: object, **kwargs: object) -> object:
        left.append(len(store._publisher._built))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(enricher_module, "foresee", counting)
    snap = store.scan()
    assert len(left) == len(snap.rows) >= 20
    assert left == list(range(len(snap.rows), 0, -1))  # one built row fewer at each enrichment


def test_every_transcript_is_paired_with_its_agent_once_per_block_change(tmp_path: Path) -> None:
    """A reader of every transcript (a metrics scrape) gets (agent, view) pairs made per block of
    the rollup when first asked; the next snapshot's reader reuses the pairs of every block its
    change left as it was (the same objects) and makes those of the changed block only."""
    state = tmp_path / "state"
    _store_of(state, 30)
    store = make_store(state)
    first = store.scan().transcripts
    assert {(agent, id(view)) for agent, view in first} == {
        (view.agent_id, id(view)) for view in store._joins.tviews.values()
    }
    path = state / "agents/ops/sessions/00000000-0000-4000-8000-000000000003.jsonl"
    _append(path, 0.5)
    after = store.scan({str(path)}).transcripts
    kept = {id(pair) for pair in first}
    made = [pair for pair in after if id(pair) not in kept]
    assert len(after) == len(first) and 1 <= len(made) < len(after) // 4
    assert any(view is store._joins.tviews[str(path)] for _agent, view in made)


def test_a_sqlite_agents_sources_are_its_nodes_read_through_no_map_of_their_own(tmp_path: Path) -> None:
    """A node with a row is its source: the agent kept a second map of every node (~25 bytes a
    session). A node whose row is rejected is no source; an archive beside the database is."""
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    sessions = state / "agents/main/sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    archive = sessions / "0badc0de-0000-4000-8000-000000000001.jsonl.deleted.2026-11-24T17-08-45.156Z"
    archive.write_bytes((SMALL_STATE / OPS_TRANSCRIPT).read_bytes())
    store = open_store(Settings(state_dir=str(state), no_cache=True), {})
    store.scan()
    agent = store.agents["main"]
    assert isinstance(agent, SqliteAgent)
    assert "sources" not in vars(agent)
    archived = "agent:main:0badc0de-0000-4000-8000-000000000001"
    assert set(agent.sources) == {k for k, n in agent.nodes.items() if n.row is not None} | {archived}
    assert agent.sources[archived].archived and agent.sources[archived] is agent.archived[archived]
    key, node = next((k, n) for k, n in agent.nodes.items() if n.row is not None)
    assert agent.sources[key] is node and len(agent.sources) == len(set(agent.sources))
    with sqlite3.connect(state / "agents/main/agent/openclaw-agent.sqlite") as db:
        db.execute(
            "UPDATE session_nodes SET entry_json = '[1]', updated_at = updated_at + 1 WHERE session_key = ?", (key,)
        )
    store.scan()
    assert agent.nodes[key].row is None and key not in agent.sources and agent.sources.get(key) is None
    assert key not in store._joins.sources  # the store was told: its row is gone


@pytest.mark.parametrize("workers", [1, 2])
def test_a_sqlite_session_keeps_one_string_for_its_stats_id_and_one_for_its_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """``<database>#<sessionId>`` (~190 bytes) was made for the source and again for the cursor
    (and by a worker's image, and on every move of the node); the node's session id was a copy
    of its row's."""
    monkeypatch.setattr(sqlite_events, "PARALLEL_MIN_EVENTS", 0)  # the real fixture is small
    state = tmp_path / "state"
    shutil.copytree(REAL_SQLITE / "state", state)
    store = open_store(Settings(state_dir=str(state), no_cache=True), {}, workers=workers)

    def check() -> int:
        shared = 0
        for agent in store.agents.values():
            assert isinstance(agent, SqliteAgent)
            for src in agent.sources.values():
                tail = agent.tails.get(src.stats_id or "")
                if tail is None or tail.path.startswith("/"):  # an archive beside the database
                    continue
                assert tail.path is src.stats_id
                assert next(k for k in agent.tails if k == src.stats_id) is src.stats_id
                shared += 1
            for key, node in agent.nodes.items():
                # one object a node (its Source), its id, session id and time its row's strings
                assert agent.sources.get(key, node) is node and node.row is not None
                assert node.stats_id == cursor_id(agent.source.agent_id, node.row.sessionId or "")
                assert node.row.sessionId is agent._sid(node)
                assert node.updated_at is node.row.updatedAt or node.updated_at != node.row.updatedAt
        return shared

    store.scan()
    assert check() >= 5
    assert sum(a.adopted for a in store.agents.values() if isinstance(a, SqliteAgent)) == (0 if workers == 1 else 10)
    db = writer(sqlite_path(state))
    with db:
        sid = current_session_id(db, "agent:main:main")
        append_events(db, sid, [live_call("a1b2c3d4", 0.25)])
        db.execute("UPDATE session_nodes SET updated_at = updated_at + 1 WHERE session_key = 'agent:main:main'")
    db.close()
    assert "agent:main:main" in store.scan().changed
    assert check() >= 5
