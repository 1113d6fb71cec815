"""StatsStore on real files: index replacement, resets, orphans, config, persisted index."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

from clawstats.watch.file_agent import FileAgent
from clawstats.watch.store import StatsStore
from clawstats.watch.tail import Tail
from tests.conftest import OPS_TRANSCRIPT, make_store, scan

MAIN = "agents/main/sessions"
RESET_SID = "0b41224b-65b5-4c0d-a10c-ee515287d572"


def _replace_index(state: Path, agent: str, doc: dict[str, object]) -> None:
    path = state / f"agents/{agent}/sessions/sessions.json"
    tmp = path.with_name(f"sessions.json.{os.getpid()}.abc.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)


def _index(state: Path, agent: str = "main") -> dict[str, dict[str, object]]:
    return json.loads((state / f"agents/{agent}/sessions/sessions.json").read_text())


def _reset(state: Path, rows: dict[str, dict[str, object]] | None = None) -> dict[str, dict[str, object]]:
    """``agent:main:reset-me`` reset as a gateway resets it (its transcript renamed to an archive,
    a new session id in its row), ``rows`` added to the index; the index written and returned."""
    old = state / MAIN / f"{RESET_SID}.jsonl"
    os.rename(old, old.with_name(f"{RESET_SID}.jsonl.reset.2026-11-24T18-00-00.000Z"))
    new_sid = "11111111-2222-3333-4444-555555555555"
    doc = _index(state)
    doc["agent:main:reset-me"].update(sessionId=new_sid, sessionFile=str(old.parent / f"{new_sid}.jsonl"))
    doc.update(rows or {})
    _replace_index(state, "main", doc)
    return doc


def test_model_switch_arrives_with_the_replaced_index(small_state: Path) -> None:
    store = make_store(small_state)
    assert store.scan().by_key["agent:main:main"].context_window == 128000
    doc = _index(small_state)
    doc["agent:main:main"].update(model="mock-small", contextTokens=32000)
    _replace_index(small_state, "main", doc)
    row = store.scan().by_key["agent:main:main"]
    assert row.model == "mock/mock-small" and row.context_window == 32000 and row.context_pct == 53


def test_invalid_index_keeps_last_good_copy_and_degrades(small_state: Path) -> None:
    store = make_store(small_state)
    before = store.scan()
    path = small_state / MAIN / "sessions.json"
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # half-written (a non-atomic writer)
    during = store.scan()
    assert [r.key for r in during.rows] == [r.key for r in before.rows]
    assert during.health.status == "degraded"
    assert during.health.counters == {"indexMalformed": 1}
    path.write_bytes(good + b"\n")
    after = store.scan()
    assert after.health.status == "ok"
    assert after.totals.total_cost == before.totals.total_cost


def test_row_with_wrong_types_is_skipped_and_counted(small_state: Path) -> None:
    doc = _index(small_state)
    doc["agent:main:main"]["totalTokens"] = "lots"
    _replace_index(small_state, "main", doc)
    snap = scan(small_state)
    assert snap.health.counters == {"rowWrongType": 1, "transcriptWithoutRow": 1}
    orphan = snap.by_key["agent:main:9d6375e0-9810-4ac4-96de-8c68c0932dc2"]
    assert math.isclose(orphan.total_cost, 0.0706476, abs_tol=1e-9)  # cost still counted once


def test_reset_renames_transcript_and_nothing_is_reread_or_doubled(small_state: Path) -> None:
    store = make_store(small_state)
    before = store.scan()
    old = small_state / MAIN / f"{RESET_SID}.jsonl"
    read_before = Tail.counts.bytes_read
    os.rename(old, old.with_name(f"{RESET_SID}.jsonl.reset.2026-11-24T18-00-00.000Z"))
    new_sid = "11111111-2222-3333-4444-555555555555"
    (old.parent / f"{new_sid}.jsonl").write_text(
        json.dumps({"type": "session", "version": 3, "id": new_sid, "timestamp": "2026-11-24T18:00:00.000Z"}) + "\n"
    )
    doc = _index(small_state)
    doc["agent:main:reset-me"].update(sessionId=new_sid, sessionFile=str(old.parent / f"{new_sid}.jsonl"))
    for name in ("totalTokens", "totalTokensFresh"):
        doc["agent:main:reset-me"].pop(name)
    _replace_index(small_state, "main", doc)
    after = store.scan()
    read_after = Tail.counts.bytes_read
    assert read_after - read_before < 200  # only the new header line
    assert math.isclose(after.totals.total_cost, before.totals.total_cost, abs_tol=1e-12)
    live = after.by_key["agent:main:reset-me"]
    # no call yet: the agent's base prompt (from its latest transcript's first call) as an estimate
    bases = [(t.stats.last_call_ms or 0.0, t.stats.base_prompt) for t in store.tails.values() if t.stats.base_prompt]
    assert live.total_cost == 0 and live.context_source == "estimate"
    assert live.context_tokens == max(bases)[1] and 10_000 < max(bases)[1] < 20_000
    archive = after.by_key[f"agent:main:{RESET_SID}"]
    assert archive.archived and archive.archived_from == "agent:main:reset-me"
    assert math.isclose(live.lifetime_cost, archive.total_cost, abs_tol=1e-12)  # older archive: owner unknown


def test_archive_owner_from_trajectory_sidecar(small_state: Path) -> None:
    sid = "02e6078a-0790-4990-9386-70a62f32cc51"
    (small_state / MAIN / f"{sid}.trajectory.jsonl").write_text(
        json.dumps({"traceSchema": "openclaw-trajectory", "sessionKey": "agent:main:reset-me"}) + "\n"
    )
    snap = scan(small_state)
    assert snap.by_key[f"agent:main:{sid}"].archived_from == "agent:main:reset-me"
    live = snap.by_key["agent:main:reset-me"]
    assert math.isclose(live.lifetime_cost, 0.069258 + 0.117048, abs_tol=1e-9)


def test_row_without_transcript_and_foreign_session_file(small_state: Path) -> None:
    doc = _index(small_state)
    doc["agent:main:new"] = {"sessionId": "nope", "updatedAt": 1795540200000, "sessionFile": "/elsewhere/nope.jsonl"}
    _replace_index(small_state, "main", doc)
    store = make_store(small_state)
    store.row_grace_s = 0.0  # counted at once (the grace period has its own test)
    snap = store.scan()
    row = snap.by_key["agent:main:new"]
    assert row.total_cost is None and row.cost_source == "unknown" and row.context_source == "estimate"
    assert snap.totals.unknown_sessions == 1 and snap.totals.cost_source == "partial"
    assert snap.health.counters == {"rowWithoutTranscript": 1}


def test_row_before_its_transcript_is_not_a_fault_until_it_persists(small_state: Path) -> None:
    """OpenClaw writes a new session's row, then its transcript: no warning for that moment."""
    doc = _index(small_state)
    doc["agent:main:fresh"] = {"sessionId": "fresh-sid", "updatedAt": 1795540200000}
    doc["agent:main:never"] = {"sessionId": "never-sid", "updatedAt": 1795540200000}
    _replace_index(small_state, "main", doc)
    store = make_store(small_state)
    store.row_grace_s = 0.5
    first = store.scan()
    assert first.health.counters.get("rowWithoutTranscript", 0) == 0 and "agent:main:fresh" in first.by_key
    (small_state / MAIN / "fresh-sid.jsonl").write_text(json.dumps({"type": "session", "id": "fresh-sid"}) + "\n")
    time.sleep(0.6)  # past the grace period: the row still without a transcript is a fault now
    later = store.scan()
    assert later.health.counters == {"rowWithoutTranscript": 1}
    assert list(later.health.by_file.values()) == [{"rowWithoutTranscript": 1}]
    assert store.scan().health.counters == {"rowWithoutTranscript": 1}  # counted once, not per scan


def test_a_row_removed_while_waiting_for_its_transcript_is_not_kept_waiting(small_state: Path) -> None:
    """A row without a transcript is remembered (for its grace period) only while it is a row:
    a gateway that writes and removes such rows must not grow the agent's memory for good."""
    doc = _index(small_state)
    doc["agent:main:gone-soon"] = {"sessionId": "gone-sid", "updatedAt": 1795540200000}
    _replace_index(small_state, "main", doc)
    store = make_store(small_state)
    store.scan()
    agent = store.agents["main"]
    assert isinstance(agent, FileAgent) and set(agent._missing_since) == {"agent:main:gone-soon"}
    del doc["agent:main:gone-soon"]
    _replace_index(small_state, "main", doc)
    assert "agent:main:gone-soon" not in store.scan().by_key
    assert agent._missing_since == {}


def test_config_windows_and_prices_fill_what_rows_and_entries_lack(small_state: Path) -> None:
    shutil.copy(small_state / "openclaw.sanitized.json", small_state / "openclaw.json")
    doc = _index(small_state)
    doc["agent:main:main"].pop("contextTokens")
    doc["agent:main:main"].update(model="mock-small")
    _replace_index(small_state, "main", doc)
    path = small_state / MAIN / "9d6375e0-9810-4ac4-96de-8c68c0932dc2.jsonl"
    lines = [json.loads(raw) for raw in path.read_text().splitlines()]
    for entry in lines:
        if entry.get("type") == "message" and entry["message"]["role"] == "assistant":
            entry["message"]["usage"].pop("cost")
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    row = scan(small_state).by_key["agent:main:main"]
    assert row.context_window == 32000 and row.context_window_source == "config"
    assert row.cost_source == "computed" and row.missing_cost_entries == 2
    assert math.isclose(row.total_cost, 0.0706476, rel_tol=1e-9)  # the config's prices, recomputed


def test_unpriced_model_is_partial(small_state: Path) -> None:
    path = small_state / MAIN / "9d6375e0-9810-4ac4-96de-8c68c0932dc2.jsonl"
    lines = [json.loads(raw) for raw in path.read_text().splitlines()]
    for entry in lines:
        if entry.get("type") == "message" and entry["message"]["role"] == "assistant":
            entry["message"]["usage"].pop("cost")
            break
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    row = scan(small_state).by_key["agent:main:main"]
    assert row.cost_source == "partial" and row.missing_cost_entries == 1


def test_genai_prices_fallback_for_a_known_model(small_state: Path) -> None:
    path = small_state / MAIN / "9d6375e0-9810-4ac4-96de-8c68c0932dc2.jsonl"
    lines = [json.loads(raw) for raw in path.read_text().splitlines()]
    for entry in lines:
        if entry.get("type") == "message" and entry["message"]["role"] == "assistant":
            entry["message"]["usage"].pop("cost")
            entry["message"].update(provider="openai", model="gpt-4o")
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    row = scan(small_state).by_key["agent:main:main"]
    assert row.cost_source == "computed" and row.total_cost > 0


def test_warm_restart_reads_only_new_bytes(small_state: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = make_store(small_state, no_cache=False, cache_dir=str(cache_dir))
    cold = first.scan()
    assert first.cache is not None
    first.flush(force=True)
    read_before = Tail.counts.bytes_read
    second = make_store(small_state, no_cache=False, cache_dir=str(cache_dir))
    warm = second.scan()
    assert Tail.counts.bytes_read == read_before
    assert [r for r in warm.rows] == [r for r in cold.rows]
    line = (small_state / OPS_TRANSCRIPT).read_bytes().splitlines(keepends=True)[56]
    with open(small_state / OPS_TRANSCRIPT, "ab") as fh:
        fh.write(line)
    third = make_store(small_state, no_cache=False, cache_dir=str(cache_dir))
    third.scan()
    assert Tail.counts.bytes_read - read_before == len(line)


def test_a_reset_while_not_running_finds_its_owner_in_the_index_which_keeps_no_map(
    small_state: Path, tmp_path: Path
) -> None:
    """The persisted owners (session id -> key) attribute an archive made while clawstats was not
    running; a flush writes the owners of the rows that changed, and the cache keeps no map of
    every path or owner it saved (~300 bytes a session at 50,000)."""
    cache_dir = str(tmp_path / "cache")
    first = make_store(small_state, no_cache=False, cache_dir=cache_dir)
    rows = len(first.scan().rows)
    first.close()
    doc = _reset(small_state)  # while not running
    cold = scan(small_state)  # no index: nothing says whose the archive was
    assert cold.by_key[f"agent:main:{RESET_SID}"].archived_from is None
    second = make_store(small_state, no_cache=False, cache_dir=cache_dir)
    warm = second.scan()
    assert warm.by_key[f"agent:main:{RESET_SID}"].archived_from == "agent:main:reset-me"
    assert second.cache is not None  # ready (its first flush waits for the next scan): no map held
    assert not [v for v in vars(second.cache).values() if isinstance(v, dict) and len(v) >= rows // 2]
    second.flush(force=True)
    doc["agent:main:main"]["label"] = "renamed"
    _replace_index(small_state, "main", doc)
    second.scan()
    assert second._index._owners(second.agents) == [("main", doc["agent:main:main"]["sessionId"], "agent:main:main")]
    second.close()


def test_an_archive_keeps_its_learnt_owner_across_a_restart_when_a_row_names_its_id(
    small_state: Path, tmp_path: Path
) -> None:
    """A key reset: its old id's archive is the key's (learnt). A row still naming that id (an
    alias) written again later must not overwrite the learnt owner in the index: what a restart
    restores is what the running server said (the learnt owner first, as ``FileAgent.owners``)."""
    cache_dir = str(tmp_path / "cache")
    archive_key = f"agent:main:{RESET_SID}"
    first = make_store(small_state, no_cache=False, cache_dir=cache_dir)
    first.scan()
    doc = _reset(small_state, {"agent:main:alias": {"sessionId": RESET_SID, "updatedAt": 1}})
    assert first.scan().by_key[archive_key].archived_from == "agent:main:reset-me"
    first.flush(force=True)
    doc["agent:main:alias"]["label"] = "renamed"  # the alias row written again: its key is flushed
    _replace_index(small_state, "main", doc)
    line = (small_state / OPS_TRANSCRIPT).read_bytes().splitlines(keepends=True)[56]
    with open(small_state / OPS_TRANSCRIPT, "ab") as fh:
        fh.write(line)  # (and a transcript with it: a flush writes only when one changed)
    running = first.scan().by_key[archive_key].archived_from
    first.close()
    second = make_store(small_state, no_cache=False, cache_dir=cache_dir)
    assert running == "agent:main:reset-me"
    assert second.scan().by_key[archive_key].archived_from == running
    second.close()


def test_a_warm_start_writes_back_only_what_changed_since(small_state: Path, tmp_path: Path) -> None:
    """Restored transcripts and owners are not written again (a warm start at 50,000 sessions
    rewrote them all: 1.6 s); a line appended since is one row of the index."""
    cache_dir = str(tmp_path / "cache")
    first = make_store(small_state, no_cache=False, cache_dir=cache_dir)
    first.scan()
    first.close()
    second = make_store(small_state, no_cache=False, cache_dir=cache_dir)
    second.scan()
    second.flush(force=True)
    assert second.cache is not None and second.cache._db is not None
    assert second.cache._db.total_changes == 0
    line = (small_state / OPS_TRANSCRIPT).read_bytes().splitlines(keepends=True)[56]
    with open(small_state / OPS_TRANSCRIPT, "ab") as fh:
        fh.write(line)
    second.scan()
    second.flush(force=True)
    assert second.cache._db.total_changes == 1
    second.close()


def test_without_a_cache_no_transcript_is_kept_pending_for_a_flush(small_state: Path, tmp_path: Path) -> None:
    """What changed since the last flush is kept only when there is an index to flush to: in
    ``serve --no-cache`` the set held every transcript ever read (100 bytes a session)."""
    line = (small_state / OPS_TRANSCRIPT).read_bytes().splitlines(keepends=True)[56]
    cached, plain = make_store(small_state, no_cache=False, cache_dir=str(tmp_path / "cache")), make_store(small_state)
    cached.scan(), plain.scan()
    # the first scan's snapshot comes before its flush (every transcript: ~1 s at 50,000)
    assert len(cached._index.dirty) == len(cached.tails) > 1
    cached.flush(force=True)
    with open(small_state / OPS_TRANSCRIPT, "ab") as fh:
        fh.write(line)
    cached.scan(), plain.scan()
    assert cached._index.dirty == {str(small_state / OPS_TRANSCRIPT)}  # until the next flush
    assert not plain._index.dirty
    cached.flush(force=True)
    assert not cached._index.dirty


def test_unwritable_cache_dir_degrades_but_works(small_state: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    store: StatsStore = make_store(small_state, no_cache=False, cache_dir=str(blocker / "cache"))
    snap = store.scan()
    assert snap.health.status == "degraded"
    assert any("index cache" in reason for reason in snap.health.conditions.values())
    assert len(snap.rows) == 9


def test_state_dir_removed_and_recreated(small_state: Path, tmp_path: Path) -> None:
    store = make_store(small_state)
    before = store.scan()
    moved = tmp_path / "moved"
    os.rename(small_state, moved)
    during = store.scan()
    assert during.health.status == "degraded" and during.rows == ()
    os.rename(moved, small_state)
    after = store.scan()
    assert after.health.status == "ok"
    assert math.isclose(after.totals.total_cost, before.totals.total_cost, abs_tol=1e-12)


def test_json_nested_deeper_than_the_decoder_goes_is_a_bad_record_not_a_crash(small_state: Path) -> None:
    """msgspec refuses nesting past the interpreter's recursion limit with RecursionError: a
    transcript line, a sessions.json or a trajectory's first line nested that deep (a tool call's
    arguments can be any JSON) is counted like any malformed record; it failed every scan."""
    deep = b"[" * 5000 + b"]" * 5000
    sessions = small_state / "agents/ops/sessions"
    (sessions / "orphan.jsonl").write_bytes((small_state / OPS_TRANSCRIPT).read_bytes())
    (sessions / "orphan.trajectory.jsonl").write_bytes(b'{"sessionKey": "agent:ops:x", "x": ' + deep + b"}\n")
    store = make_store(small_state)
    first = store.scan()
    with open(small_state / OPS_TRANSCRIPT, "ab") as fh:
        fh.write(b'{"type":"message","message":{"role":"assistant","content":' + deep + b"}}\n")
    index_path = sessions / "sessions.json"
    tmp = index_path.with_name("sessions.json.5.abc.tmp")
    tmp.write_bytes(index_path.read_bytes().rstrip()[:-1] + b', "agent:ops:deep": {"x": ' + deep + b"}}")
    os.replace(tmp, index_path)
    warm, cold = store.scan(), make_store(small_state).scan()
    for snap in (warm, cold):
        assert snap.health.counters["malformed"] == 1 and snap.health.counters["indexMalformed"] == 1
        assert snap.by_key["agent:ops:orphan"].archived_from is None  # no owner from its trace
    assert warm.rows == first.rows  # the last good index, the line skipped


def test_a_config_nested_deeper_than_json5_goes_is_a_condition_not_a_crash(small_state: Path) -> None:
    """json5 parses by recursion: ``openclaw.json`` or an agent's ``models.json`` nested past the
    interpreter's limit raised RecursionError out of every command."""
    deep = "[" * 3000 + "]" * 3000
    (small_state / "openclaw.json").write_text('{"x": ' + deep + "}")
    models = small_state / "agents/ops/agent/models.json"
    models.parent.mkdir(parents=True, exist_ok=True)
    models.write_text('{"providers": ' + deep + "}")
    snap = make_store(small_state).scan()
    assert snap.health.status == "degraded"
    assert any("nested too deeply" in reason for reason in snap.health.conditions.values())
    assert "agent:ops:incident-long" in snap.by_key  # the sessions are still read
