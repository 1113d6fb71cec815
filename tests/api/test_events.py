"""The Hub on real scans: deltas, Last-Event-ID replay, and a slow subscriber dropped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from clawstats.api import events
from clawstats.api.events import Hub
from clawstats.core.session import iso_ms
from tests.conftest import OPS_TRANSCRIPT, make_store


def _append_call(state: Path, n: int) -> None:
    line = {
        "type": "message",
        "id": f"hub{n}",
        "timestamp": "2026-11-24T18:00:00.000Z",
        "message": {
            "role": "assistant",
            "provider": "mock",
            "model": "mock-small",
            "usage": {"input": 1000 + n, "output": 1, "cost": {"total": 0.01}},
            "stopReason": "stop",
        },
    }
    with open(state / OPS_TRANSCRIPT, "a") as fh:
        fh.write(json.dumps(line) + "\n")


def _parse(frame: bytes) -> dict[str, str]:
    """One SSE frame as an EventSource reads it: its field lines up to the blank line."""
    text = frame.decode()
    assert text.endswith("\r\n\r\n") and text.count("\r\n\r\n") == 1, "one whole frame"
    fields = {}
    for line in text[:-4].split("\r\n"):
        name, _, value = line.partition(": ")
        assert name not in fields, f"one {name} line"
        fields[name] = value
    return fields


async def _snapshot(stream: AsyncIterator[bytes]) -> bytes:
    """The first frame's pieces, up to the empty chunk that follows them (nothing is sent for it:
    it releases the last piece while the client idles)."""
    pieces = []
    while (piece := await anext(stream)) != b"":
        pieces.append(piece)
    return b"".join(pieces)


def test_a_first_snapshot_is_sent_in_pieces_of_one_frame(small_state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "SNAPSHOT_PIECE_ROWS", 2)

    async def run() -> None:
        hub = Hub()
        hub.publish(make_store(small_state).scan())
        snapshot = hub.current
        assert snapshot is not None and len(snapshot.rows) > 4
        stream = hub.stream(None)
        pieces = []
        while (piece := await anext(stream)) != b"":
            pieces.append(piece)
        await stream.aclose()
        assert len(pieces) == 2 + (len(snapshot.rows) + 1) // 2  # head, a piece per two rows, tail
        whole = {
            "revision": snapshot.revision,
            "sessions": snapshot.rows,
            "totals": snapshot.totals,
            "generatedAt": iso_ms(snapshot.generated_ms),
        }
        one_go = events.make_event(
            snapshot.revision, "snapshot", f"{hub.epoch}-{snapshot.revision}", msgspec.json.encode(whole)
        )
        assert b"".join(pieces) == one_go.frame
        assert json.loads(_parse(b"".join(pieces))["data"])["sessions"][0]["key"] == snapshot.rows[0].key

    asyncio.run(run())


def test_an_idle_stream_sends_keep_alive_comments(small_state: Path) -> None:
    async def run() -> None:
        hub = Hub()
        hub.publish(make_store(small_state).scan())
        stream = hub.stream(None, keep_alive_s=0.05)
        await _snapshot(stream)
        assert await anext(stream) == events.KEEP_ALIVE  # nothing happened: a comment
        assert await anext(stream) == events.KEEP_ALIVE
        await stream.aclose()

    asyncio.run(run())


def test_deltas_replay_and_slow_client_dropped(small_state: Path) -> None:
    async def run() -> None:
        store = make_store(small_state)
        hub = Hub(queue_size=2, history=8)
        hub.publish(store.scan())
        first = hub.current
        assert first is not None
        slow = hub.subscribe()
        for n in range(3):
            _append_call(small_state, n)
            hub.publish(store.scan())
        assert slow.dropped and slow not in hub.subscribers and hub.dropped_total == 1
        events = hub.replay_after(first.revision)
        assert events is not None and [e.name for e in events] == ["sessions"] * 3
        body = json.loads(_parse(events[-1].frame)["data"])
        assert [r["key"] for r in body["sessions"]] == ["agent:ops:incident-long"]
        assert body["sessions"][0]["contextTokens"] == 1002
        assert hub.replay_after(-5) is None  # unknown id: the client gets a fresh snapshot
        stream = hub.stream(f"{hub.epoch}-{first.revision + 1}")
        replayed = [_parse(await anext(stream)), _parse(await anext(stream))]
        assert [e["id"] for e in replayed] == [f"{hub.epoch}-{first.revision + 2}", f"{hub.epoch}-{first.revision + 3}"]
        assert [e["event"] for e in replayed] == ["sessions", "sessions"]
        assert json.loads(replayed[-1]["data"]) == body
        await stream.aclose()

    asyncio.run(run())


def test_last_event_id_of_a_previous_process_gets_a_fresh_snapshot(small_state: Path) -> None:
    """Revisions restart at 1 in every process: the old page's id must not look like "up to date"."""

    async def run() -> None:
        before = Hub()
        before.publish(make_store(small_state).scan())
        assert before.current is not None
        old_id = f"{before.epoch}-{before.current.revision}"
        _append_call(small_state, 7)  # the store moves on while clawstats restarts
        after = Hub()  # a new process: its own epoch, revisions from 1 again
        after.publish(make_store(small_state).scan())
        assert after.current is not None and after.current.revision == before.current.revision
        assert after.epoch != before.epoch
        stream = after.stream(old_id)
        first = _parse(await _snapshot(stream))
        await stream.aclose()
        assert first["event"] == "snapshot" and first["id"] == f"{after.epoch}-{after.current.revision}"
        rows = {r["key"]: r for r in json.loads(first["data"])["sessions"]}
        assert rows["agent:ops:incident-long"]["contextTokens"] == 1007

    asyncio.run(run())


def test_alert_ids_never_reuse_a_delta_id(small_state: Path) -> None:
    store = make_store(small_state)
    hub = Hub()
    hub.publish(store.scan())
    _append_call(small_state, 1)
    hub.publish(store.scan())
    assert hub.current is not None
    alert = hub.alert_event(hub.current.revision, b"{}")
    delta_ids = {e.id for e in hub.history}
    assert alert.id not in delta_ids and alert.id.startswith(f"{hub.epoch}-{hub.current.revision}-")
    assert hub.revision_of(alert.id) == hub.current.revision  # a reconnect after it resumes there
    assert hub.alert_event(hub.current.revision, b"{}").id != alert.id
